package safetensors

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// equivalent fails t unless the scanner and the encoding/json reader it
// replaced (ref_test.go) agree on header: the same tensors, field for field
// (a nil shape is not an empty one), or the same error.
func equivalent(t *testing.T, header []byte, dataStart, size int64) {
	t.Helper()
	got, gotErr := parseHeader(header, dataStart, size)
	want, wantErr := refParseHeader(header, dataStart, size)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("header %.200q: scanner error %v, encoding/json error %v", header, gotErr, wantErr)
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("header %.200q:\nscanner:       %v\nencoding/json: %v", header, gotErr, wantErr)
		}
	case len(got) != len(want):
		t.Fatalf("header %.200q: scanner %d tensors, encoding/json %d", header, len(got), len(want))
	default:
		for i := range got {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("header %.200q: tensor %d:\nscanner:       %#v\nencoding/json: %#v", header, i, got[i], want[i])
			}
		}
	}
}

// scannerSeeds are headers at the edges of the JSON grammar and of the
// format.
var scannerSeeds = []string{
	``, ` `, `{`, `}`, `{}`, ` {} `, `{} x`, `{}{}`, `[]`, `[1]`, `"x"`, `5`, `5x`, `-`, `tru`, `null`, `{,}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}`,
	// an entry as the safetensors library writes it, and near misses of
	// that form (canonicalEntry reads the first, entry's general scan the
	// others)
	`{"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}`, `{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"","shape":[1],"data_offsets":[0,4]}}`, `{"a":{"dtype":"F\u0033","shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4] }}`,
	`{"a":{"dtype":"F32","shape":[1,2,3,4,5,6,7,8,9],"data_offsets":[0,4]}}`, `{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F-32","shape":[1],"data_offsets":[0,4]}}`, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[-1,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]} "b":1}`,
	// a field given twice, which the safetensors library refuses
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"F32"}}`,
	`{"a":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,4]}}`,
	`{"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1,"x":2}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"d\u0074ype":"I8"}}`,
	`{"a" {"dtype":"F32"}}`, `{"a"::{}}`, `{"a":{},"a":{}}`, `{"a":{}, "a" 5}`,
	`{"a":null}`, `{"a":nul}`, `{"a":5}`, `{"a":-0.5e+3}`, `{"a":"s"}`, `{"a":[1]}`, `{"a":true}`, `{"a":false}`,
	`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,2]}}`,
	`{"a":{"dt\u0079pe":"F32","shape":[1],"data_offsets":[0,4]}}`,
	`{"\u0061":{"dtype":"\u0046\u00332","shape":[1],"data_offsets":[0,4]}}`,
	`{"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
	`{"a\"b\\c\/\b\f\n\r\t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
	`{"a\x":{}}`, `{"a\u12":{}}`, "{\"a\x01\":{}}",
	`{"a":{"dtype":"F32","shape":[ 1 , 2 ],"data_offsets":[ 0 , 8 ] , "x" : [ {} , [] , "" , 0 ] }}`,
	`{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1e2],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}`,
	`{"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[9223372036854775807],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[-9223372036854775808],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[-9223372036854775809],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[99999999999999999999999],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[[0],4]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":["0","4"]}}`,
	`{"a":{"dtype":"F32","shape":[[1,2],3],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":{},"data_offsets":[0,4]}}`,
	`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"X","shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"shape":[1],"data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","data_offsets":[0,4]}}`,
	`{"a":{"dtype":"F32","shape":[1]}}`,
	`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`,
	`{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"c":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
	`{"__metadata__":{"format":"pt","n":[1,{"x":null}]},"__metadata__":{}}`,
	`{"__metadata__":5}`, `{"__metadata__":[1,2}`,
	`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}` + "\n\t\r ",
}

// TestScannerEquivalence runs the seeds, every fixture's header, and
// nesting at encoding/json's depth limit through both readers.
func TestScannerEquivalence(t *testing.T) {
	for _, h := range scannerSeeds {
		equivalent(t, []byte(h), 8+int64(len(h)), 8+int64(len(h))+64)
	}
	for _, b := range seedFiles(t) {
		n := int64(binary.LittleEndian.Uint64(b))
		equivalent(t, b[8:8+n], 8+n, int64(len(b)))
	}
	for _, depth := range []int{9998, 9999, 10000, 10001} {
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		for _, h := range []string{
			`{"__metadata__":` + deep + `}`,
			`{"a":{"x":` + deep + `,"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`,
			`{"a":{"dtype":"F32","shape":[` + deep + `],"data_offsets":[0,4]}}`,
		} {
			equivalent(t, []byte(h), 8+int64(len(h)), 8+int64(len(h))+64)
		}
	}
}

// TestDuplicateKeys: a repeated key is found wherever it repeats, in the
// orders that take each of the duplicate check's ways (names sorted as the
// safetensors library writes them, numbered names in insertion order, names
// in no order past the runs it walks, a few names), at the offset of its
// second entry, as encoding/json's reader found it.
func TestDuplicateKeys(t *testing.T) {
	entry := func(name string, i int) string {
		return fmt.Sprintf(`%q:{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}`, name, 4*i, 4*i+4)
	}
	numbered := func(n int, f string) []string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(f, i))
		}
		return s
	}
	var shuffled []string
	for i := range 300 {
		shuffled = append(shuffled, fmt.Sprintf("w.%d", i*7919%300))
	}
	orders := map[string][]string{
		"sorted":   numbered(300, "model.layers.%03d.weight"),
		"numbered": numbered(300, "model.layers.%d.weight"),
		"no order": shuffled,
		"few":      {"b", "a", "c"},
	}
	for name, keys := range orders {
		for _, at := range []int{1, len(keys) / 2, len(keys)} { // the second entry's place
			for _, of := range []int{0, at / 2, at - 1} { // the key it repeats
				entries := make([]string, 0, len(keys)+1)
				for i, k := range keys[:at] {
					entries = append(entries, entry(k, i))
				}
				entries = append(entries, entry(keys[of], at))
				for i, k := range keys[at:] {
					entries = append(entries, entry(k, at+1+i))
				}
				h := []byte("{" + strings.Join(entries, ",") + "}")
				_, err := parseHeader(h, 8+int64(len(h)), 8+int64(len(h))+4*int64(len(entries)))
				if err == nil || !strings.Contains(err.Error(), "duplicate key") {
					t.Errorf("%s, %q again at %d: %v", name, keys[of], at, err)
					continue
				}
				equivalent(t, h, 8+int64(len(h)), 8+int64(len(h))+4*int64(len(entries)))
			}
		}
		h := []byte("{" + strings.Join(func() []string { // and no repeat: no error
			var e []string
			for i, k := range keys {
				e = append(e, entry(k, i))
			}
			return e
		}(), ",") + "}")
		equivalent(t, h, 8+int64(len(h)), 8+int64(len(h))+4*int64(len(keys)))
	}
}

// FuzzScannerEquivalence checks the hand-written scanner against the
// encoding/json reader it replaced, on any header and data size.
func FuzzScannerEquivalence(f *testing.F) {
	for _, h := range scannerSeeds {
		f.Add([]byte(h), uint16(64))
	}
	for _, b := range seedFiles(f) {
		n := binary.LittleEndian.Uint64(b)
		f.Add(b[8:8+n], uint16(min(len(b)-8-int(n), 65535)))
	}
	f.Fuzz(func(t *testing.T, header []byte, data uint16) {
		dataStart := 8 + int64(len(header))
		equivalent(t, header, dataStart, dataStart+int64(data))
	})
}

// TestRepeatedField: an entry that gives dtype, shape or data_offsets twice
// is refused, naming the field, whichever value came last; a map would keep
// the last one and audit a tensor the safetensors library cannot load.
func TestRepeatedField(t *testing.T) {
	for h, want := range map[string]string{
		`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"shape":[1]}}`:          `shape: given twice`,
		`{"w":{"dtype":"I8","shape":[8],"data_offsets":[0,8],"dtype":"F32"}}`:         `dtype: given twice`,
		`{"w":{"data_offsets":[0,4],"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`: `data_offsets: given twice`,
	} {
		_, err := parseHeader([]byte(h), 8+int64(len(h)), 8+int64(len(h))+8)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"w"`) {
			t.Errorf("%s: got %v, want an error naming tensor \"w\" and %q", h, err, want)
		}
		equivalent(t, []byte(h), 8+int64(len(h)), 8+int64(len(h))+8)
	}
}
