//go:build !linux

package procs

import (
	"errors"
	"syscall"
)

// sysProcAttr refuses: without Pdeathsig a killed launcher would leave its
// cluster running, which is worse than not starting it.
func sysProcAttr() (*syscall.SysProcAttr, error) {
	return nil, errors.New("procs: process supervision needs Linux (Pdeathsig)")
}

func pauseSignal() (syscall.Signal, error) {
	return 0, errors.New("procs: pause needs Linux")
}

func resumeSignal() (syscall.Signal, error) {
	return 0, errors.New("procs: resume needs Linux")
}
