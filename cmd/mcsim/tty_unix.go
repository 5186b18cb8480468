//go:build unix

package main

import "golang.org/x/sys/unix"

// foreground reports whether this process's group is the foreground
// process group of the terminal on fd: false after `mcsim up &` or Ctrl-Z
// and bg, true again after fg.
func foreground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}
