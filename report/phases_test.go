package report

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// samplePhases are the phases of a cached decode of the sample model: its
// 8 QINS-log linears (32,768 weights) decoded in two layers, with a forward
// batch; nothing uses optimizer state, so that column is left out.
func samplePhases() []accounting.Phase {
	stored := map[string]int64{"encoded_linear": 82048, "embedding": 131072, "untouched": 33024}
	phase := func(name string, decoded, activations int64) accounting.Phase {
		by := map[string]int64{"optimizer_state": 0, "decoded": decoded, "activations": activations}
		var in, exp int64
		for k, v := range stored {
			by[k] = v + 256 // allocator rounding
		}
		for _, v := range by {
			in += v
		}
		exp = 82048 + 131072 + 33024 + decoded + activations
		return accounting.Phase{Name: name, InUseBytes: in, ExpectedBytes: exp, ByRole: by}
	}
	return []accounting.Phase{
		phase("after-load", 0, 0),
		phase("layer layers.0", 65536, 4096),
		phase("layer layers.1", 131072, 4096),
		phase("after-decode", 131072, 4096),
		phase("end", 0, 0),
	}
}

func TestPhasesTable(t *testing.T) {
	rep := sample(t)
	rep.Phases = NewPhases(samplePhases())
	for _, c := range []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"sample_phases.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{}) }},
		{"sample_phases_bytes.txt", func(b *bytes.Buffer) error { return WriteText(b, rep, TextOptions{Bytes: true}) }},
		{"sample_phases.md", func(b *bytes.Buffer) error { return WriteMarkdown(b, rep, TextOptions{}) }},
		{"sample_phases.csv", func(b *bytes.Buffer) error { return WriteCSV(b, rep, TextOptions{}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name, b.Bytes())
		})
	}
}

// TestPhasesTextAgreesWithJSON: with --bytes each phase row carries the
// JSON's integers.
func TestPhasesTextAgreesWithJSON(t *testing.T) {
	rep := &Report{Phases: NewPhases(samplePhases())}
	tab := phasesTable(rep, TextOptions{Bytes: true})
	if got, want := strings.Join(tab.header, "|"), "phase|in use (B)|expected (B)|encoded_linear (B)|embedding (B)|untouched (B)|decoded (B)|activations (B)"; got != want {
		t.Fatalf("header %s, want %s", got, want)
	}
	for i, p := range rep.Phases {
		row := tab.rows[i]
		want := []int64{p.InUseBytes, p.ExpectedBytes, p.ByRole["encoded_linear"], p.ByRole["embedding"], p.ByRole["untouched"], p.ByRole["decoded"], p.ByRole["activations"]}
		for j, w := range want {
			if row[j+1] != strconv.FormatInt(w, 10) {
				t.Errorf("%s column %d: %s, JSON has %d", p.Phase, j+1, row[j+1], w)
			}
		}
	}
	if phasesTable(&Report{}, TextOptions{}) != nil {
		t.Error("a report without phases has a phases table")
	}
}

// TestPhasesCSV: the phases follow the role rows as a section of their own,
// every by-role key a column, with the JSON's integers.
func TestPhasesCSV(t *testing.T) {
	rep := sample(t)
	rep.Phases = NewPhases(samplePhases())
	var b bytes.Buffer
	if err := WriteCSV(&b, rep, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	sections := strings.Split(b.String(), "\n\n")
	if len(sections) != 2 {
		t.Fatalf("%d sections:\n%s", len(sections), b.String())
	}
	r := csv.NewReader(strings.NewReader(sections[1]))
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(rows[0], ","), "phase,in_use_bytes,expected_bytes,encoded_linear_bytes,embedding_bytes,untouched_bytes,optimizer_state_bytes,decoded_bytes,activations_bytes"; got != want {
		t.Errorf("header %s, want %s", got, want)
	}
	for i, p := range rep.Phases {
		row := rows[i+1]
		if row[0] != p.Phase || row[1] != strconv.FormatInt(p.InUseBytes, 10) || row[7] != strconv.FormatInt(p.ByRole["decoded"], 10) {
			t.Errorf("row %v, phase %+v", row, p)
		}
	}
}
