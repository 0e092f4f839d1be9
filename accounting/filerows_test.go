package accounting

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFileRows holds fileRows to its definition, each file's rows in
// order, on rows that come file by file (the runs it walks in place) and
// on rows in any order (the index it builds), with rows of no file among
// them.
func TestFileRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := rng.IntN(5)
		rows := make([]Row, rng.IntN(40))
		for j := range rows {
			rows[j].File = rng.IntN(n+3) - 1 // -1 and n, n+1 are no file's
		}
		if trial%2 == 0 { // file by file
			slices.SortStableFunc(rows, func(a, b Row) int {
				return min(max(a.File, -1), n) - min(max(b.File, -1), n)
			})
			// and a row of no file inside a run now and then
			if len(rows) > 2 && rng.IntN(2) == 0 {
				rows[rng.IntN(len(rows))].File = -1
			}
		}
		got := fileRows(rows, n)
		for f := range n {
			var want []int
			for j := range rows {
				if rows[j].File == f {
					want = append(want, j)
				}
			}
			if g := slices.Collect(got(f)); !slices.Equal(g, want) {
				t.Fatalf("trial %d, files %v: file %d's rows %v, want %v", trial, files(rows), f, g, want)
			}
		}
	}
}

func files(rows []Row) []int {
	out := make([]int, len(rows))
	for j := range rows {
		out[j] = rows[j].File
	}
	return out
}
