// Package version says which qinsaudit this is, from the build information
// the Go toolchain records: the module version for `go install
// ...@vX.Y.Z`, "(devel)" for a build from a clone, and the VCS revision
// when the build recorded one.
package version

import (
	"runtime/debug"
	"sync"
)

// String is the version as `qinsaudit --version` prints it and JSON
// reports carry it: "v1.2.3", "(devel) 4be7b1e0c2a1", or
// "(devel) 4be7b1e0c2a1+dirty".
var String = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	return describe(bi)
})

func describe(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" || v != "(devel)" {
		return v // a tagged version names its commit already
	}
	return v + " " + rev[:min(len(rev), 12)] + dirty
}
