package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/internal/realworld"
	"github.com/qinsaudit/qinsaudit/internal/remote/hubtest"
	"github.com/qinsaudit/qinsaudit/internal/schematest"
	"github.com/qinsaudit/qinsaudit/report"
)

// hub starts a loopback Hub, points HF_ENDPOINT at it, and keeps the
// user's token and cache out of the test.
func hub(t *testing.T) *hubtest.Server {
	t.Helper()
	s := hubtest.New(t)
	t.Setenv("HF_ENDPOINT", s.Hub.URL)
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", "")
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	return s
}

// withoutRemote cuts the remote block, the report's last field, out of
// JSON written by WriteJSON; it fails when there is none.
func withoutRemote(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, ",\n  \"remote\": {")
	if i < 0 || !strings.HasSuffix(out, "}\n}\n") {
		t.Fatalf("no remote block last in:\n%s", out)
	}
	return out[:i] + "\n}\n"
}

// inDir runs the command line in dir.
func inDir(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	code := run(args, &o, &e)
	if err := os.Chdir(wd); err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(o.String(), "{") {
		schematest.Validate(t, o.Bytes())
	}
	return o.String(), e.String(), code
}

// sameAudit checks that the remote audit of src equals the local audit of
// local (run in dir) byte for byte, but for the remote block; both may
// fail, with the same exit code.
func sameAudit(t *testing.T, dir, local, src string, args ...string) {
	t.Helper()
	want, wantErr, wantCode := inDir(t, dir, append(append([]string{}, args...), local)...)
	got, gotErr, gotCode := runCmd(t, append(append([]string{}, args...), src)...)
	if gotCode != wantCode {
		t.Fatalf("%s: exit %d (%s), local %s exit %d (%s)", src, gotCode, gotErr, local, wantCode, wantErr)
	}
	if wantCode != 0 && wantCode != exitGate {
		// The same error, after the source.
		if msg := strings.TrimPrefix(wantErr, "qinsaudit: "); !strings.Contains(gotErr, msg) {
			t.Errorf("%s: error %q, local %q", src, gotErr, wantErr)
		}
		return
	}
	if g := withoutRemote(t, got); g != want {
		t.Errorf("%s differs from the local audit of %s:\n--- remote\n%s\n--- local\n%s", src, local, g, want)
	}
}

// modelDirs are the fixture folders served as repos.
var modelDirs = []string{"safetensors/sharded", "gguf", "quant/awq", "quant/bnb4", "quant/bnb8", "quant/compressed_int4",
	"quant/fp8", "quant/fp8_block", "quant/gptq", "quant/gptq_float_layer", "quant/mlx"}

// TestRemoteEqualsLocal: for every repo served (each fixture folder, and
// every model file of the fixtures and of shared/realworld), the remote
// audit's JSON is the local audit's, byte for byte, but for the remote
// block.
func TestRemoteEqualsLocal(t *testing.T) {
	s := hub(t)
	json := []string{"audit", "--format", "json", "--no-cache"}
	for _, d := range modelDirs {
		dir, _ := filepath.Abs(filepath.Join(fixtures, d))
		name := "fix/" + strings.ReplaceAll(d, "/", "-")
		s.AddDir(t, name, dir)
		t.Run(d, func(t *testing.T) { sameAudit(t, dir, ".", "hf://"+name, json...) })
	}
	files := func(root string) []string {
		var out []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && !strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, ".md") &&
				!strings.HasSuffix(p, ".py") && !strings.HasSuffix(p, "SUMS") {
				rel, _ := filepath.Rel(root, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		sort.Strings(out)
		return out
	}
	for _, d := range []string{"safetensors", "gguf", "torch"} {
		dir, _ := filepath.Abs(filepath.Join(fixtures, d))
		s.AddDir(t, "fix/"+d, dir)
		for _, f := range files(dir) {
			if strings.Contains(f, "/") && d != "safetensors" {
				continue
			}
			t.Run(d+"/"+f, func(t *testing.T) { sameAudit(t, dir, f, "hf://fix/"+d+"/"+f, json...) })
		}
	}
	rw, _ := filepath.Abs(realworld.Dir())
	if _, err := os.Stat(rw); err != nil {
		t.Log("no shared/realworld: its files are not served")
		return
	}
	s.AddDir(t, "real/world", rw)
	for _, f := range files(rw) {
		t.Run("realworld/"+f, func(t *testing.T) { sameAudit(t, rw, f, "hf://real/world/"+f, json...) })
	}
}

// TestRemoteCommands: check, diff and crosscheck take a remote model;
// decode refuses one.
func TestRemoteCommands(t *testing.T) {
	s := hub(t)
	torch, _ := filepath.Abs(filepath.Join(fixtures, "torch"))
	s.AddDir(t, "fix/torch", torch)
	cfg, _ := filepath.Abs(filepath.Join(fixtures, "ci/qinsaudit.yaml"))
	sameAudit(t, torch, "qins_rational_f32.pt", "hf://fix/torch/qins_rational_f32.pt", "check", "--format", "json", "--config", cfg)
	sameAudit(t, torch, "qins_rational_u8.pt", "hf://fix/torch/qins_rational_u8.pt", "check", "--format", "json", "--config", cfg)
	heap, _ := filepath.Abs(heapFixture("tcmalloc-import-cache-after-decode"))
	sameAudit(t, torch, "toy_qins_log.pt", "hf://fix/torch/toy_qins_log.pt", "crosscheck", "--format", "json", "--heap", heap)

	out, errOut, code := runCmd(t, "diff", "--format", "json", "hf://fix/torch/qins_rational_u8.pt", filepath.Join(torch, "qins_rational_u8.pt"))
	if code != 0 || !strings.Contains(out, "\"status\": \"same\",\n    \"old_bytes\": 123952") || strings.Contains(out, `"status": "new"`) {
		t.Errorf("diff remote vs local of the same file: exit %d %s\n%s", code, errOut, out)
	}
	saved := filepath.Join(t.TempDir(), "f32.json")
	o, _, _ := runCmd(t, "audit", "--format", "json", filepath.Join(torch, "qins_rational_f32.pt"))
	os.WriteFile(saved, []byte(o), 0o644)
	out, errOut, code = runCmd(t, "diff", "--bytes", saved, "hf://fix/torch/qins_rational_u8.pt")
	if code != 0 || !strings.Contains(out, "encoded_linear") {
		t.Errorf("diff saved report vs remote: exit %d %s\n%s", code, errOut, out)
	}

	_, errOut, code = runCmd(t, "decode", "hf://fix/torch/toy_qins_log.pt")
	if code != exitUsage || !strings.Contains(errOut, "decode reads local files only") {
		t.Errorf("decode of a remote model: exit %d, %s", code, errOut)
	}
	_, errOut, code = runCmd(t, "audit", "hf://fix/torch/toy_qins_log.pt", filepath.Join(torch, "toy_fp32.pt"))
	if code != exitUsage || !strings.Contains(errOut, "a remote model is read alone") {
		t.Errorf("remote with another path: exit %d, %s", code, errOut)
	}
}

// TestRemoteRequests: a single-file repo and an N-shard repo each cost
// the listing, config.json and the index where there is one, and one
// ranged GET per model file, the shards' all in flight together.
func TestRemoteRequests(t *testing.T) {
	s := hub(t)
	s.Latency = 40 * time.Millisecond
	sharded, _ := filepath.Abs(filepath.Join(fixtures, "safetensors/sharded"))
	s.AddDir(t, "fix/sharded", sharded)
	single, _ := filepath.Abs(filepath.Join(fixtures, "quant/gptq"))
	s.AddDir(t, "fix/single", single)
	gguf, _ := filepath.Abs(filepath.Join(fixtures, "gguf"))
	s.AddDir(t, "fix/gguf", gguf)
	for _, c := range []struct {
		repo   string
		shards int
		meta   []string
	}{
		{"fix/single", 1, []string{"config.json"}},
		{"fix/sharded", 2, []string{"config.json", "model.safetensors.index.json"}},
		// The first part of a split GGUF: both parts at once.
		{"fix/gguf/tiny-00001-of-00002.gguf", 2, nil},
	} {
		s.Reset()
		out, errOut, code := runCmd(t, "audit", "--format", "json", "hf://"+c.repo)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.repo, code, errOut)
		}
		var listings, cdn int
		var meta []string
		for _, q := range s.Log() {
			switch {
			case q.Host == "hub" && strings.HasPrefix(q.Path, "/api/"):
				listings++
			case q.Host == "hub" && q.Status == 200 || q.Status == 206 && q.Host == "hub":
				meta = append(meta, filepath.Base(q.Path))
			case q.Host == "cdn":
				cdn++
				if q.Status != 206 {
					t.Errorf("%s: CDN answered %d to %s", c.repo, q.Status, q.Range)
				}
			}
		}
		sort.Strings(meta)
		if listings != 1 || cdn != c.shards || strings.Join(meta, " ") != strings.Join(c.meta, " ") {
			t.Errorf("%s: %d listings, %d ranged GETs of model files, metadata %v; want 1, %d, %v", c.repo, listings, cdn, meta, c.shards, c.meta)
		}
		if p := s.Peak("cdn"); p != c.shards {
			t.Errorf("%s: %d ranged GETs in flight at most, want all %d", c.repo, p, c.shards)
		}
		rep, err := report.ReadJSON(strings.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		// Every request the server saw is counted: the resolves' 302 hops too.
		if r := rep.Remote; r == nil || r.Requests != int64(len(s.Log())) || r.CacheHits != 0 || len(r.Sources) != 1 ||
			len(r.Sources[0].Commit) != 40 || r.Sources[0].Source != "hf://"+c.repo {
			t.Errorf("%s: remote block %+v, %d requests served", c.repo, rep.Remote, len(s.Log()))
		}
	}
}

// TestRemoteOtherFiles: the other files of a repo (README, tokenizer)
// are told from model files by content, each with one ranged GET of a
// few bytes, in the same round as the shards; they change nothing in
// the report.
func TestRemoteOtherFiles(t *testing.T) {
	s := hub(t)
	sharded, _ := filepath.Abs(filepath.Join(fixtures, "safetensors/sharded"))
	files := map[string][]byte{}
	des, _ := os.ReadDir(sharded)
	for _, e := range des {
		b, err := os.ReadFile(filepath.Join(sharded, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	dir := t.TempDir()
	files["README.md"] = []byte("# a model card\n")
	files["tokenizer.json"] = []byte(`{"model": {"vocab": {` + strings.Repeat(`"tok": 1, `, 20000) + `"end": 2}}}`)
	files[".gitattributes"] = []byte("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.Add("fix/card", files)
	s.Latency = 20 * time.Millisecond
	sameAudit(t, dir, ".", "hf://fix/card", "audit", "--format", "json")
	var other int64
	for _, q := range s.Log() {
		if strings.HasSuffix(q.Path, "/tokenizer.json") || strings.HasSuffix(q.Path, "/README.md") || strings.HasSuffix(q.Path, "/.gitattributes") {
			other++
			if q.Bytes > 1024 || q.Status != 206 {
				t.Errorf("%s: %d, %d bytes", q.Path, q.Status, q.Bytes)
			}
		}
	}
	if other != 3 {
		t.Errorf("%d requests for the 3 other files", other)
	}
}

// TestRemoteCacheAndText: a second audit of the same commit reads header
// bytes from the cache (only the listing is sent) and gives the same
// figures; the text output carries the remote line.
func TestRemoteCacheAndText(t *testing.T) {
	s := hub(t)
	sharded, _ := filepath.Abs(filepath.Join(fixtures, "safetensors/sharded"))
	repo := s.AddDir(t, "fix/sharded", sharded)
	var outs []string
	for run := range 2 {
		s.Reset()
		out, errOut, code := runCmd(t, "audit", "--format", "json", "hf://fix/sharded")
		if code != 0 {
			t.Fatal(errOut)
		}
		outs = append(outs, withoutRemote(t, out))
		rep, _ := report.ReadJSON(strings.NewReader(out))
		if run == 1 && (rep.Remote.CacheHits != 4 || rep.Remote.Requests != 1 || len(s.Log()) != 1) {
			t.Errorf("cached run: %+v, %d requests served", rep.Remote, len(s.Log()))
		}
	}
	if outs[0] != outs[1] {
		t.Error("the cache changed the report")
	}
	out, _, _ := runCmd(t, "audit", "--bytes", "hf://fix/sharded")
	want := "remote: hf://fix/sharded at commit " + repo.Commit + "; 1 requests, "
	if !strings.Contains(out, want) || !strings.Contains(out, "4 cache hits") {
		t.Errorf("no %q in:\n%s", want, out)
	}
	s.Reset()
	if _, _, code := runCmd(t, "audit", "--no-cache", "hf://fix/sharded"); code != 0 || len(s.Log()) != 7 {
		t.Errorf("--no-cache: exit %d, %d requests", code, len(s.Log()))
	}
}

// TestRemoteErrors: Hub errors and transport faults are bad input (exit
// 1), each named.
func TestRemoteErrors(t *testing.T) {
	s := hub(t)
	s.Token = "hf_test"
	s.Add("org/gated", map[string][]byte{"m.gguf": {1}}).Gated = true
	sharded, _ := filepath.Abs(filepath.Join(fixtures, "safetensors/sharded"))
	s.AddDir(t, "fix/sharded", sharded)
	for _, c := range []struct {
		src, want string
	}{
		{"hf://org/gated", "org/gated is a gated repository"},
		{"hf://org/nothing", "repository org/nothing not found (if it is private, set HF_TOKEN)"},
		{"hf://fix/sharded@v2", `revision "v2" not found in fix/sharded`},
		{"hf://fix/sharded/nope.gguf", `no file or folder "nope.gguf" in fix/sharded at commit`},
		{"hf://fix", "want hf://ORG/REPO"},
	} {
		_, errOut, code := runCmd(t, "audit", c.src)
		want := exitBadInput
		if c.src == "hf://fix" {
			want = exitUsage
		}
		if code != want || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, %s; want %d and %q", c.src, code, errOut, want, c.want)
		}
	}
	s.Inject(&hubtest.Fault{Host: "cdn", Kind: hubtest.IgnoreRange})
	_, errOut, code := runCmd(t, "audit", "hf://fix/sharded")
	if code != exitBadInput || !strings.Contains(errOut, "not 206") {
		t.Errorf("a server ignoring Range: exit %d, %s", code, errOut)
	}
	// With the token (from $HF_HOME/token) the gated repo opens.
	s.Reset()
	os.WriteFile(filepath.Join(os.Getenv("HF_HOME"), "token"), []byte("hf_test\n"), 0o600)
	if _, errOut, code := runCmd(t, "audit", "hf://org/gated"); code != exitBadInput || !strings.Contains(errOut, "no model files found") {
		t.Errorf("gated with a token: exit %d, %s (want the 1-byte file's own error)", code, errOut)
	}
	for _, q := range s.Log() {
		if (q.Host == "hub") != (q.Auth == "Bearer hf_test") {
			t.Errorf("%s %s: Authorization %q", q.Host, q.Path, q.Auth)
		}
	}
}
