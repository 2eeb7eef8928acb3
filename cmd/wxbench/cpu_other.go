//go:build !unix

package main

import "time"

// cpuTime reports 0 where the process's CPU time is not read; the report
// then leaves CPU per request out.
func cpuTime() time.Duration { return 0 }
