// Command kubectl is the upstream client, built from the same Go module as the
// control plane, so the node tests run the walkthrough's own commands
// (kubectl run, kubectl apply -f) at the cluster's version.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
