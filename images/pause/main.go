// The pod sandbox ("pause") process of the kube tier's cluster: PID 1 of every pod's sandbox
// container. It holds the pod's namespaces open, reaps any child handed to it, and exits on
// SIGINT/SIGTERM. No registry is reachable here, so registry.k8s.io/pause cannot be pulled; this
// is its stand-in (images/build.sh builds it into the image tally.local/pause).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if os.Getpid() != 1 {
		os.Stderr.WriteString("pause: warning: not PID 1\n")
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
