package version

import (
	"runtime/debug"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "4be7b1e0c2a1ffff"}}}, "v1.2.3"},
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "4be7b1e0c2a1ffff"}}}, "(devel) 4be7b1e0c2a1"},
		{debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "4be7b1e"}, {Key: "vcs.modified", Value: "true"}}}, "(devel) 4be7b1e+dirty"},
		{debug.BuildInfo{}, "(devel)"},
	} {
		if got := describe(&c.bi); got != c.want {
			t.Errorf("describe(%+v) = %q, want %q", c.bi, got, c.want)
		}
	}
	if String() == "" {
		t.Error("String() is empty")
	}
}
