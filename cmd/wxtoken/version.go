package main

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version may be set at build time with -ldflags "-X main.version=...".
// When it is not, the module version Go records in the binary is used.
var version string

// versionLine describes the running binary.
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, bi)
}

// describeBuild says which wxtoken this is: the version set at build
// time, else the module version Go recorded (v1.2.3 for go install
// ...@v1.2.3; a pseudo-version naming the commit for a build in a
// checkout), then the VCS revision and time, whether the checkout had
// uncommitted changes, and the Go release it was built with. bi may be
// nil.
func describeBuild(set string, bi *debug.BuildInfo) string {
	v, goVersion := set, runtime.Version()
	var details []string
	if bi != nil {
		if v == "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		vcs := map[string]string{}
		for _, s := range bi.Settings {
			vcs[s.Key] = s.Value
		}
		if r := vcs["vcs.revision"]; r != "" {
			details = append(details, "revision "+r)
		}
		if t := vcs["vcs.time"]; t != "" {
			details = append(details, t)
		}
		if vcs["vcs.modified"] == "true" {
			details = append(details, "modified")
		}
	}
	if v == "" {
		v = "dev"
	}
	line := "wxtoken " + v
	if len(details) > 0 {
		line += " (" + strings.Join(details, ", ") + ")"
	}
	return line + " " + goVersion
}
