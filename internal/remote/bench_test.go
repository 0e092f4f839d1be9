package remote_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/internal/remote"
	"github.com/qinsaudit/qinsaudit/internal/remote/hubtest"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// latency is injected into every request of the benchmark's server.
const latency = 50 * time.Millisecond

// shardedRepo is Llama-3-70B's layout: 80 layers of 9 tensors and the
// embeddings, bfloat16, in n safetensors shards written as the safetensors
// library writes them (header padded to 8 bytes), an index and a
// config.json. The server holds each shard's header and serves zeros for
// its 4-5 GB of data. It returns the files, their sizes and the sum of the
// shards' header sizes (8-byte length included).
func shardedRepo(t testing.TB, n int) (map[string][]byte, map[string]int64, int64) {
	type tensor struct {
		name  string
		shape []int
	}
	const hidden, inter, kv, vocab = 8192, 28672, 1024, 128256
	var tensors []tensor
	tensors = append(tensors, tensor{"model.embed_tokens.weight", []int{vocab, hidden}})
	for l := range 80 {
		for _, x := range []tensor{{"self_attn.q_proj", []int{hidden, hidden}}, {"self_attn.k_proj", []int{kv, hidden}},
			{"self_attn.v_proj", []int{kv, hidden}}, {"self_attn.o_proj", []int{hidden, hidden}},
			{"mlp.gate_proj", []int{inter, hidden}}, {"mlp.up_proj", []int{inter, hidden}}, {"mlp.down_proj", []int{hidden, inter}},
			{"input_layernorm", []int{hidden}}, {"post_attention_layernorm", []int{hidden}}} {
			tensors = append(tensors, tensor{fmt.Sprintf("model.layers.%d.%s.weight", l, x.name), x.shape})
		}
	}
	tensors = append(tensors, tensor{"model.norm.weight", []int{hidden}}, tensor{"lm_head.weight", []int{vocab, hidden}})
	files := map[string][]byte{}
	sizes := map[string]int64{}
	weightMap := map[string]string{}
	var headers, total int64
	for i := range n {
		shard := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, n)
		hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
		off := int64(0)
		for _, x := range tensors[i*len(tensors)/n : (i+1)*len(tensors)/n] {
			size := int64(2)
			for _, d := range x.shape {
				size *= int64(d)
			}
			hdr[x.name] = map[string]any{"dtype": "BF16", "shape": x.shape, "data_offsets": []int64{off, off + size}}
			off += size
			weightMap[x.name] = shard
		}
		total += off
		js, err := json.Marshal(hdr)
		if err != nil {
			t.Fatal(err)
		}
		for len(js)%8 != 0 {
			js = append(js, ' ')
		}
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
		b = append(b, js...)
		headers += int64(len(b))
		files[shard] = b
		sizes[shard] = int64(len(b)) + off
	}
	ix, _ := json.Marshal(map[string]any{"metadata": map[string]int64{"total_size": total}, "weight_map": weightMap})
	files["model.safetensors.index.json"] = ix
	files["config.json"] = []byte(`{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "bfloat16"}`)
	return files, sizes, headers
}

type measured struct {
	wall              time.Duration
	requests          int
	bytes, rangeBytes int64
}

// readQinsaudit audits the repo as qinsaudit does: listing, metadata,
// every shard's head at once.
func readQinsaudit(t testing.TB, s *hubtest.Server, parallel int) measured {
	s.Reset()
	c := remote.NewClient(remote.Config{Endpoint: s.Hub.URL, Parallel: parallel})
	src, _ := remote.Parse("hf://org/llama", s.Hub.URL)
	fsys, p, err := c.Model(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loaders.OpenSource(fsys, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tensors) != 1+80*9+2 || m.Tensors[0].Shape[0] != 128256 {
		t.Fatalf("%d tensors", len(m.Tensors))
	}
	if err := fsys.Repo().Close(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	return measured{wall: st.Wall, requests: int(st.Requests), bytes: st.BytesReceived, rangeBytes: cdnBytes(s)}
}

// readHubStyle reads the repo as huggingface_hub's get_safetensors_metadata
// does: the listing and the index, then per shard, one after another, a
// HEAD of its resolve URL and a GET of bytes 0-99999 (a second GET for the
// rest of a longer header).
func readHubStyle(t testing.TB, s *hubtest.Server, commit string, n int) measured {
	s.Reset()
	start := time.Now()
	var bytes int64
	get := func(method, url, rng string) *http.Response {
		req, _ := http.NewRequest(method, url, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	read := func(resp *http.Response) []byte {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bytes += int64(len(b))
		return b
	}
	read(get("GET", s.Hub.URL+"/api/models/org/llama/revision/main", ""))
	read(get("GET", s.Hub.URL+"/org/llama/resolve/"+commit+"/model.safetensors.index.json", ""))
	for i := range n {
		u := fmt.Sprintf("%s/org/llama/resolve/%s/model-%05d-of-%05d.safetensors", s.Hub.URL, commit, i+1, n)
		read(get("HEAD", u, ""))
		b := read(get("GET", u, "bytes=0-99999"))
		if hl := int64(binary.LittleEndian.Uint64(b)); hl+8 > int64(len(b)) {
			read(get("GET", u, fmt.Sprintf("bytes=%d-%d", len(b), hl+7)))
		}
	}
	return measured{wall: time.Since(start), requests: len(s.Log()), bytes: bytes, rangeBytes: cdnBytes(s)}
}

func cdnBytes(s *hubtest.Server) int64 {
	var n int64
	for _, q := range s.Log() {
		if q.Host == "cdn" {
			n += q.Bytes
		}
	}
	return n
}

// TestThirtyShards: with 250 ms a request, a 30-shard repo's headers are
// read with one request per shard (and its redirect), all at once to each
// host, the shards' resolves in flight with the index's GET (their names
// say the set is complete, so they do not wait for it), receiving for the
// shards less than twice their headers' bytes.
func TestThirtyShards(t *testing.T) {
	s := hubtest.New(t)
	files, sizes, headers := shardedRepo(t, 30)
	s.AddSized("org/llama", files, sizes)
	// Five times the benchmark's latency: the waves are asserted by the
	// order of sends and answers, and on a loaded CI machine sending 32
	// requests once took longer than 50 ms.
	const slow = 5 * latency
	s.Latency = slow
	m := readQinsaudit(t, s, 0)
	t.Logf("30 shards, %d header bytes: %v (%.1f round trips), %d requests, %d bytes received, %d of them shard ranges",
		headers, m.wall, float64(m.wall)/float64(slow), m.requests, m.bytes, m.rangeBytes)
	// listing, config + index (each whole in one GET), then per shard a
	// 302 and a 206.
	if m.requests != 3+2*30 {
		t.Errorf("%d requests, want %d", m.requests, 3+2*30)
	}
	if m.rangeBytes > 2*headers || m.rangeBytes < headers {
		t.Errorf("%d bytes of shard ranges for %d header bytes", m.rangeBytes, headers)
	}
	// Parallel up to the bound (32: the index, config.json and 30
	// resolves), and never beyond it, on each host; the benchmark reports
	// the wall time.
	if hub, cdn := s.Peak("hub"), s.Peak("cdn"); hub != 32 || cdn != 30 {
		t.Errorf("at most %d requests in flight to the Hub and %d to the CDN, want 32 and 30", hub, cdn)
	}
	checkWaves(t, s.Log(), 30)
}

// checkWaves asserts that after the listing the Hub's requests (the
// index, config.json, the shards' resolves) were one wave, all sent before
// any was answered, and so were the CDN's ranges: three round trips in
// all, whatever the machine's speed (each request takes 250 ms).
func checkWaves(t *testing.T, log []hubtest.Request, shards int) {
	t.Helper()
	if len(log) == 0 || !strings.Contains(log[0].Path, "/api/models/") {
		t.Fatalf("the first request is not the listing: %+v", log)
	}
	var index hubtest.Request
	waves := map[string][]hubtest.Request{}
	for _, q := range log[1:] {
		waves[q.Host] = append(waves[q.Host], q)
		if strings.HasSuffix(q.Path, ".index.json") {
			index = q
		}
		if q.Start.Before(log[0].End) {
			t.Errorf("%s %s sent before the listing was answered", q.Host, q.Path)
		}
	}
	if index.Path == "" {
		t.Fatal("the index was not read")
	}
	if n := len(waves["hub"]); n != 2+shards {
		t.Errorf("%d requests to the Hub after the listing, want %d", n, 2+shards)
	}
	for host, qs := range waves {
		firstEnd := qs[0].End
		for _, q := range qs {
			if q.End.Before(firstEnd) {
				firstEnd = q.End
			}
		}
		for _, q := range qs {
			if q.Start.After(firstEnd) {
				t.Errorf("%s %s %s sent after another answer of its host: a second wave", host, q.Path, q.Range)
			}
			if host == "hub" && q.Start.After(index.End) {
				t.Errorf("%s waited for the index", q.Path)
			}
		}
	}
}

// BenchmarkThirtyShards compares qinsaudit's reads with huggingface_hub's
// way on the same repo, at 50 ms a request.
func BenchmarkThirtyShards(b *testing.B) {
	s := hubtest.New(b)
	files, sizes, headers := shardedRepo(b, 30)
	repo := s.AddSized("org/llama", files, sizes)
	s.Latency = latency
	for _, c := range []struct {
		name string
		read func() measured
	}{
		{"qinsaudit", func() measured { return readQinsaudit(b, s, 0) }},
		{"qinsaudit-16-per-host", func() measured { return readQinsaudit(b, s, 16) }},
		{"huggingface_hub-style", func() measured { return readHubStyle(b, s, repo.Commit, 30) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var m measured
			for b.Loop() {
				m = c.read()
			}
			b.ReportMetric(float64(m.wall.Milliseconds()), "wall-ms")
			b.ReportMetric(float64(m.wall)/float64(latency), "round-trips")
			b.ReportMetric(float64(m.requests), "requests")
			b.ReportMetric(float64(m.bytes), "bytes-received")
			b.ReportMetric(float64(m.rangeBytes)/float64(headers), "range-bytes/header-bytes")
		})
	}
}
