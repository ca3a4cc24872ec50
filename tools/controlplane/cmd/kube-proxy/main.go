// Command kube-proxy is the upstream Service proxy, built from its Go module;
// on the test node it routes the kubernetes Service to the API server, so the
// operator's Pod runs with in-cluster configuration.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
