// Command kube-controller-manager is the upstream controller manager, built
// from its Go module; the test harness runs a few of its controllers
// (namespace lifecycle, garbage collection, default ServiceAccounts) so the
// local control plane behaves like a real cluster.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
