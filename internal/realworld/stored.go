package realworld

import "github.com/qinsaudit/qinsaudit/accounting"

// StoredBytes sums the bytes of each storage of m once: what answers.json
// calls stored_bytes.
func StoredBytes(m *accounting.Model) int64 {
	seen := map[string]bool{}
	var n int64
	for _, t := range m.Tensors {
		if !seen[t.Storage] {
			seen[t.Storage] = true
			n += t.StorageBytes
		}
	}
	return n
}
