package decode

import "testing"

// LoadProgress sees the bytes read grow, one call at a time, to the total
// of the storages read: what the accounting stores.
func TestLoadProgress(t *testing.T) {
	m, res := torchModel(t, "toy_qins_log.pt")
	var calls int
	var last, total int64
	opts := Options{Workers: 4, LoadProgress: func(done, tot int64) {
		calls++
		if done <= last || done > tot || (total != 0 && tot != total) {
			t.Errorf("progress %d of %d after %d of %d", done, tot, last, total)
		}
		last, total = done, tot
	}}
	if _, err := Load(m, res, opts); err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != total || total != res.Total.StoredBytes {
		t.Fatalf("%d calls, ended at %d of %d; the model stores %d bytes", calls, last, total, res.Total.StoredBytes)
	}
}
