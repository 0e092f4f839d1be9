package accounting

import "testing"

func TestByteCountSeparators(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1,000 B", -1952: "-1,952 B", 9838736: "9,838,736 B", -999999: "-999,999 B"} {
		if got := ByteCount(n); got != want {
			t.Errorf("ByteCount(%d) = %q, want %q", n, got, want)
		}
	}
}
