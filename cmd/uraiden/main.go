// Command uraiden sells HTTP requests for µRaiden off-chain micropayments: it is an Envoy
// external-authorization service, a payment-channel watcher and a set of tools around them.
// Run `uraiden --help` for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "uraiden:", err)
		os.Exit(1)
	}
}
