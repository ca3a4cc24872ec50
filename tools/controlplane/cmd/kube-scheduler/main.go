// Command kube-scheduler is the upstream scheduler, built from its Go module;
// the node tests need it to place Pods that name no node.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand()))
}
