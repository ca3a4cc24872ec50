// Command kubelet is the upstream node agent, built from the same Go module as
// the control plane, so the end-to-end suite runs Pods on a real node.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
