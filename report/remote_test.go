package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/internal/schematest"
)

// TestRemoteBlock: the remote block validates against the schema, reads
// back unchanged, and is one line under the files table in text and
// Markdown, in the unit --bytes asks for.
func TestRemoteBlock(t *testing.T) {
	rep := sample(t)
	rep.Remote = &Remote{
		Sources:  []RemoteSource{{Source: "hf://org/m@main", Endpoint: "https://huggingface.co", Repo: "org/m", Revision: "main", Commit: strings.Repeat("ab", 20)}},
		Requests: 63, BytesReceived: 175_614, CacheHits: 2, WallMillis: 281,
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	schematest.Validate(t, js.Bytes())
	back, err := ReadJSON(bytes.NewReader(js.Bytes()))
	if err != nil || back.Remote == nil || len(back.Remote.Sources) != 1 {
		t.Fatalf("read back: %+v %v", back.Remote, err)
	}
	if back.Remote.Sources[0] != rep.Remote.Sources[0] || back.Remote.BytesReceived != 175_614 {
		t.Errorf("read back: %+v", back.Remote)
	}
	for _, c := range []struct {
		opts TextOptions
		want string
	}{
		{TextOptions{}, "remote: hf://org/m@main at commit " + strings.Repeat("ab", 20) + "; 63 requests, 171.50 KiB received, 2 cache hits, 281 ms\n"},
		{TextOptions{Bytes: true}, "; 63 requests, 175614 B received, 2 cache hits, 281 ms\n"},
	} {
		var txt, md bytes.Buffer
		if err := WriteText(&txt, rep, c.opts); err != nil {
			t.Fatal(err)
		}
		if err := WriteMarkdown(&md, rep, c.opts); err != nil {
			t.Fatal(err)
		}
		for _, out := range []string{txt.String(), md.String()} {
			if !strings.Contains(out, c.want) || strings.Count(out, "remote: ") != 1 {
				t.Errorf("want %q in:\n%s", c.want, out)
			}
		}
	}
	rep.Remote.Sources[0].Source = "hf://org/m\x1b[2J\u202e"
	var esc bytes.Buffer
	WriteText(&esc, rep, TextOptions{})
	if !strings.Contains(esc.String(), `remote: hf://org/m\x1b[2J\u202e at commit`) {
		t.Errorf("source not escaped:\n%s", esc.String())
	}
	rep.Remote = nil
	var txt bytes.Buffer
	WriteText(&txt, rep, TextOptions{})
	if strings.Contains(txt.String(), "remote:") {
		t.Error("a local report has a remote line")
	}
}
