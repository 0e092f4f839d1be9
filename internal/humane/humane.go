// Package humane rewords the errors of the YAML and JSON decoders for the
// people who wrote the file: "line 3: abc is text, want a number" rather
// than "cannot unmarshal !!str `abc` into float64", which names the tool's
// Go types (float64, []gate.Budget) instead of what the file should hold.
package humane

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Empty reports whether data holds nothing but blanks: the callers say
// "empty file" rather than a decoder's "EOF".
func Empty(data []byte) bool { return len(bytes.TrimSpace(data)) == 0 }

// yamlType and yamlField are yaml.TypeError's lines: a value of the wrong
// kind, a key the decoder does not know (with KnownFields). They are
// compiled on first use: every command links this package, few see a YAML
// error.
var (
	yamlType = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) (?:`(.*)` )?into (\\S+)$")
	})
	yamlField = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^line (\d+): field (\S+) not found in type .*$`)
	})
)

// YAML returns err's message without Go types and without the decoder's
// "yaml: " prefix.
func YAML(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n ", "")
	}
	var out []string
	for _, e := range te.Errors {
		if m := yamlField().FindStringSubmatch(e); m != nil {
			out = append(out, fmt.Sprintf("line %s: unknown key %q", m[1], m[2]))
			continue
		}
		m := yamlType().FindStringSubmatch(e)
		if m == nil {
			out = append(out, e)
			continue
		}
		if m[3] == "" { // a list or a mapping: no value quoted
			out = append(out, fmt.Sprintf("line %s: got %s, want %s", m[1], yamlKind(m[2]), goKind(m[4])))
			continue
		}
		out = append(out, fmt.Sprintf("line %s: %s is %s, want %s", m[1], quote(m[3]), yamlKind(m[2]), goKind(m[4])))
	}
	return strings.Join(out, "; ")
}

// quote shows a value of the file, shortened.
func quote(v string) string {
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%q", v)
}

// yamlKind names a YAML tag ("" for another): a switch, where a map would
// be built at every process's init.
func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	case "bool":
		return "true or false"
	case "map":
		return "a mapping"
	case "seq":
		return "a list"
	case "null":
		return "empty"
	case "timestamp":
		return "a date"
	}
	return ""
}

// goKind names what a Go type, as a decoder spells it, wants of a file.
func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case t == "string":
		return "text"
	case t == "bool":
		return "true or false"
	case t == "time.Time":
		return "a date"
	case strings.HasPrefix(t, "float"), strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a number"
	case strings.HasPrefix(t, "*"):
		return goKind(t[1:])
	}
	return "a mapping" // a struct
}

// JSON returns err's message without Go types: for a type error, the field,
// what it holds and what it should.
func JSON(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	want := "a mapping"
	if te.Type != nil {
		want = jsonKind(te.Type)
	}
	got, ok := jsonValues[strings.Fields(te.Value + " ")[0]]
	if !ok {
		got = te.Value
	}
	// The field's path starts with the Go names of embedding structs
	// (Report.files): the file's keys are the rest.
	path := strings.Split(te.Field, ".")
	for len(path) > 1 && path[0] != "" && path[0][0] >= 'A' && path[0][0] <= 'Z' {
		path = path[1:]
	}
	if field := strings.Join(path, "."); field != "" {
		return fmt.Sprintf("%q is %s, want %s", field, got, want)
	}
	return fmt.Sprintf("got %s, want %s", got, want)
}

// jsonValues names the JSON values an UnmarshalTypeError reports.
var jsonValues = map[string]string{
	"string": "text", "number": "a number", "bool": "true or false", "array": "a list", "object": "an object",
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64 {
			return "a whole number"
		}
		return "a number"
	}
	return "another type"
}
