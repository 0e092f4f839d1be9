package remote_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/qinsaudit/qinsaudit/internal/remote"
	"github.com/qinsaudit/qinsaudit/internal/remote/hubtest"
	"github.com/qinsaudit/qinsaudit/loaders"
)

// shardRepo writes shards (file name -> tensor count) of float32 [4]
// tensors named by their shard and number, an index naming them (plus
// extra, tensor -> shard) and a config.json.
func shardRepo(t *testing.T, shards map[string]int, extra map[string]string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	wm := map[string]string{}
	for shard, n := range shards {
		hdr := map[string]any{}
		for i := range n {
			name := fmt.Sprintf("model.%s.layers.%d.weight", strings.TrimSuffix(shard, ".safetensors"), i)
			hdr[name] = map[string]any{"dtype": "F32", "shape": []int{4}, "data_offsets": []int{16 * i, 16 * (i + 1)}}
			wm[name] = shard
		}
		js, _ := json.Marshal(hdr)
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
		files[shard] = append(append(b, js...), make([]byte, 16*n)...)
	}
	for k, v := range extra {
		wm[k] = v
	}
	files["model.safetensors.index.json"], _ = json.Marshal(map[string]any{"weight_map": wm})
	files["config.json"] = []byte(`{"model_type": "llama"}`)
	return files
}

func auditRepo(t *testing.T, s *hubtest.Server) error {
	t.Helper()
	s.Reset()
	c := remote.NewClient(remote.Config{Endpoint: s.Hub.URL})
	src, _ := remote.Parse("hf://org/m", s.Hub.URL)
	fsys, p, err := c.Model(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loaders.OpenSource(fsys, p)
	if cerr := fsys.Repo().Close(); cerr != nil {
		t.Fatal(cerr)
	}
	return err
}

// shardGets returns the log's resolves of shards on the Hub and the
// ranges the CDN answered.
func shardGets(log []hubtest.Request) (resolves []hubtest.Request, ranges []string) {
	for _, q := range log {
		if q.Host == "hub" && strings.HasSuffix(q.Path, ".safetensors") {
			resolves = append(resolves, q)
		}
		if q.Host == "cdn" {
			ranges = append(ranges, q.Range)
		}
	}
	return resolves, ranges
}

// TestShardsWaitUnlessNamed: shards whose names are not a complete
// -NNNNN-of-NNNNN set wait for the index and are sized from it; a complete
// set does not wait.
func TestShardsWaitUnlessNamed(t *testing.T) {
	for _, c := range []struct {
		name   string
		shards map[string]int
		wait   bool
	}{
		{"complete set", map[string]int{"model-00001-of-00002.safetensors": 5, "model-00002-of-00002.safetensors": 5}, false},
		{"other names", map[string]int{"weights-a.safetensors": 5, "weights-b.safetensors": 5}, true},
		// Names say three parts; the listing has two: the index decides.
		{"incomplete set", map[string]int{"model-00001-of-00003.safetensors": 5, "model-00003-of-00003.safetensors": 5}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := hubtest.New(t)
			s.Add("org/m", shardRepo(t, c.shards, nil))
			s.Latency = 20 * time.Millisecond
			if err := auditRepo(t, s); err != nil {
				t.Fatal(err)
			}
			log := s.Log()
			var index hubtest.Request
			for _, q := range log {
				if strings.HasSuffix(q.Path, ".index.json") {
					index = q
				}
			}
			resolves, ranges := shardGets(log)
			if len(resolves) != len(c.shards) || len(ranges) != len(c.shards) {
				t.Fatalf("%d resolves and %d ranges for %d shards: %v", len(resolves), len(ranges), len(c.shards), ranges)
			}
			for _, q := range resolves {
				if waited := !q.Start.Before(index.End); waited != c.wait {
					t.Errorf("%s: waited for the index %v, want %v", q.Path, waited, c.wait)
				}
			}
		})
	}
}

// TestNamedShardOverItsShare: a shard holding far more tensors than the
// index's size gives it before the index is read costs exactly one more
// GET, of the missing bytes only.
func TestNamedShardOverItsShare(t *testing.T) {
	s := hubtest.New(t)
	files := shardRepo(t, map[string]int{"model-00001-of-00002.safetensors": 1, "model-00002-of-00002.safetensors": 400}, nil)
	s.Add("org/m", files)
	if err := auditRepo(t, s); err != nil {
		t.Fatal(err)
	}
	big := files["model-00002-of-00002.safetensors"]
	hl := int64(binary.LittleEndian.Uint64(big)) + 8
	var got []string
	for _, q := range s.Log() {
		if q.Host == "cdn" && q.Bytes > 0 && strings.Contains(q.Range, "-") {
			got = append(got, q.Range)
		}
	}
	// The small shard: one range. The big one: a first range, then the
	// rest of its header, from where the first ended.
	if len(got) != 3 {
		t.Fatalf("ranges %v, want 3", got)
	}
	var firstEnd, second int64 = -1, -1
	for _, r := range got {
		var a, b int64
		if _, err := fmt.Sscanf(r, "bytes=%d-%d", &a, &b); err != nil {
			t.Fatal(err)
		}
		if a == 0 {
			firstEnd = max(firstEnd, b) // the one estimate, or the small shard whole
			continue
		}
		if b != hl-1 {
			t.Errorf("second range %s, want it to end at the header's last byte %d", r, hl-1)
		}
		second = a
	}
	if second < 0 || second != firstEnd+1 {
		t.Fatalf("ranges %v: want the second to start where the first ended", got)
	}
}

// TestOverlappedIndexChecked: the shards do not wait for the index, but
// it is still read and checked: a tensor it names that no shard holds is
// an error.
func TestOverlappedIndexChecked(t *testing.T) {
	s := hubtest.New(t)
	s.Add("org/m", shardRepo(t, map[string]int{"model-00001-of-00002.safetensors": 3, "model-00002-of-00002.safetensors": 3},
		map[string]string{"lm_head.weight": "model-00002-of-00002.safetensors"}))
	err := auditRepo(t, s)
	if err == nil || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Fatalf("err = %v, want one naming lm_head.weight", err)
	}
}
