package report

import (
	"bytes"
	"encoding/json"
	"testing"
)

// layoutByByte is layout as it was first written, a byte at a time: the
// reference the fast layout must agree with.
func layoutByByte(data []byte) []byte {
	var out []byte
	depth := 0
	inString, escaped := false, false
	newline := func(d int) {
		out = append(out, '\n')
		for range d {
			out = append(out, ' ', ' ')
		}
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			out = append(out, c)
		case '{', '[':
			out = append(out, c)
			depth++
			if depth <= 2 && i+1 < len(data) && data[i+1] != '}' && data[i+1] != ']' {
				newline(depth)
			}
		case '}', ']':
			depth--
			if depth < 2 && data[i-1] != '{' && data[i-1] != '[' {
				newline(depth)
			}
			out = append(out, c)
		case ',':
			out = append(out, c)
			if depth <= 2 {
				newline(depth)
			} else {
				out = append(out, ' ')
			}
		case ':':
			out = append(out, ':', ' ')
		default:
			out = append(out, c)
		}
	}
	return append(out, '\n')
}

func TestLayoutAgreesWithByteByByte(t *testing.T) {
	docs := [][]byte{}
	for _, v := range []any{
		map[string]any{}, []any{}, map[string]any{"a": []any{}, "b": map[string]any{}},
		map[string]any{"s": `quote " and \ backslash \" and \\`, "n": []any{1, 2.5, -3, true, nil, "x,y:z{}[]"},
			"nested": map[string]any{"k": []any{map[string]any{"a": "\\\\\"", "b": []any{[]any{}, map[string]any{}}}}}},
		"top string", 42,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	rep, err := json.Marshal(largeReport(t, 3_000, 2))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, rep)
	for _, d := range docs {
		if got, want := layout(d), layoutByByte(d); !bytes.Equal(got, want) {
			t.Fatalf("layout of %.200s:\n%.400s\nwant:\n%.400s", d, got, want)
		}
	}
}
