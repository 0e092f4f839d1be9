package html_test

import (
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/report"
	"github.com/qinsaudit/qinsaudit/report/html/htmltest"
)

// TestRemotePage: a remote audit's page says where the model came from and
// what reading it cost, under the files table, and still checks.
func TestRemotePage(t *testing.T) {
	rep := audit(t, toy)
	rep.Remote = &report.Remote{Sources: []report.RemoteSource{{Source: "hf://org/<b>m</b>", Commit: strings.Repeat("c", 40)}},
		Requests: 5, BytesReceived: 70_000, WallMillis: 12}
	b := page(t, rep)
	htmltest.Check(t, b)
	want := "remote: hf://org/&lt;b&gt;m&lt;/b&gt; at commit " + strings.Repeat("c", 40) + "; 5 requests, 68.36 KiB received, 0 cache hits, 12 ms"
	if !strings.Contains(string(b), want) {
		t.Errorf("no %q in the page", want)
	}
}
