//go:build unix

package localapi

import "syscall"

func umask(mask int) int { return syscall.Umask(mask) }
