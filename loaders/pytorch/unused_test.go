package pytorch

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestUnusedStorageRecord: a storage record no tensor uses (an archive
// edited by hand, or re-packed) is a gap of the file, named by its record,
// so that the unused-file-bytes finding explains that part of the
// overhead; the records the tensors use are none.
func TestUnusedStorageRecord(t *testing.T) {
	data := stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4) }, map[string]int{"0": 16, "7": 32})
	m, err := loadBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	gaps := m.Files[0].Gaps
	if len(gaps) != 1 || gaps[0].Record != "archive/data/7" || gaps[0].Bytes != 32 || gaps[0].Offset <= 0 ||
		!bytes.Equal(data[gaps[0].Offset:gaps[0].Offset+32], make([]byte, 32)) {
		t.Fatalf("gaps %+v, want archive/data/7's 32 bytes", gaps)
	}
	m.Files[0].SizeBytes = int64(len(data))
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Findings, func(f accounting.Finding) bool { return f.Kind == accounting.UnusedFileBytes })
	if i < 0 || res.Findings[i].Bytes != 32 || !strings.Contains(res.Findings[i].Message, `record "archive/data/7"`) {
		t.Fatalf("findings %+v", res.Findings)
	}
	used, err := loadBytes(stateDict(t, "w", func(p *pb) { p.tensor("FloatStorage", "0", 4) }, map[string]int{"0": 16}))
	if err != nil || len(used.Files[0].Gaps) != 0 {
		t.Fatalf("every record used: gaps %v, %v", used.Files[0].Gaps, err)
	}
}
