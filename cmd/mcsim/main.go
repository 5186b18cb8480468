// Command mcsim simulates the multiconnect cluster of the WhatsApp Business
// On-Premises API: the settings service, masters, coreapps and the gateway.
// This file only wires cobra commands to the packages that do the work; see
// README.md for every command.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := loadSecretFiles(); err != nil {
		fmt.Fprintln(os.Stderr, "mcsim:", err)
		os.Exit(exitUsage)
	}
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(os.Stderr, ex.msg)
		}
		os.Exit(ex.code)
	}
	fmt.Fprintln(os.Stderr, "mcsim:", err)
	os.Exit(exitUsage)
}
