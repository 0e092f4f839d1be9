package pytorch

import (
	"strings"
	"testing"
)

// TestSharedContainerBomb: lists that hold the previous list twice name one
// tensor by 2^30 paths. The walk lists shared values under every name (as
// state_dict does), so it must stop with an error, not run out of memory.
func TestSharedContainerBomb(t *testing.T) {
	_, err := loadBytes(checkpoint(t, sharedLists(30), map[string]int{"0": 16}))
	if err == nil || !strings.Contains(err.Error(), "tensor paths") && !strings.Contains(err.Error(), "tensor names total more than") {
		t.Fatalf("got %v, want the walk bounded", err)
	}
	// Two levels are fine: four names for one tensor, one storage.
	m, err := loadBytes(checkpoint(t, sharedLists(2), map[string]int{"0": 16}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
		if x.Storage != "data/0" {
			t.Errorf("%s on %s", x.Name, x.Storage)
		}
	}
	if strings.Join(names, " ") != "0.0 0.1 1.0 1.1" {
		t.Errorf("names %v", names)
	}
}

// sharedLists is a pickle of levels nested lists, each holding the one
// below twice; the innermost holds a tensor twice.
func sharedLists(levels int) []byte {
	p := newPickle().tensor("FloatStorage", "0", 4).raw('q', 0, '0')
	for i := 1; i <= levels; i++ {
		p.raw(']', 'h', byte(i-1), 'a', 'h', byte(i-1), 'a', 'q', byte(i))
		if i < levels {
			p.raw('0')
		}
	}
	return p.stop()
}
