package humane

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestYAML(t *testing.T) {
	type budget struct {
		Max float64 `yaml:"max"`
	}
	var c struct {
		Budgets []budget `yaml:"budgets"`
		Name    string   `yaml:"name"`
	}
	for _, x := range []struct{ in, want string }{
		{"budgets:\n  - max: abc\n", `line 2: "abc" is text, want a number`},
		{"budgets: 5\n", `line 1: "5" is a number, want a list`},
		{"name: [1]\n", "line 1: got a list, want text"},
		{"bogus: 1\n", `line 1: unknown key "bogus"`},
		{"budgets:\n  - max: true\n", `line 2: "true" is true or false, want a number`},
		{"budgets:\n  - max: 2001-12-14\n", `line 2: "2001-12-14" is a date, want a number`},
		{"budgets:\n  - max: {a: 1}\n", "line 2: got a mapping, want a number"},
		{"budgets:\n  - max: 1.5x\n", `line 2: "1.5x" is text, want a number`},
	} {
		dec := yaml.NewDecoder(strings.NewReader(x.in))
		dec.KnownFields(true)
		err := dec.Decode(&c)
		if err == nil {
			t.Fatalf("%q decoded", x.in)
		}
		got := YAML(err)
		if got != x.want {
			t.Errorf("%q: %q, want %q", x.in, got, x.want)
		}
		for _, goName := range []string{"float64", "[]humane", "budget", "yaml:", "unmarshal !!str"} {
			if strings.Contains(got, goName) {
				t.Errorf("%q: %q names %q", x.in, got, goName)
			}
		}
	}
}

func TestJSON(t *testing.T) {
	type Inner struct {
		Files []string `json:"files"`
		N     int64    `json:"n"`
	}
	var doc struct {
		*Inner
	}
	doc.Inner = new(Inner)
	for _, x := range []struct{ in, want string }{
		{`{"files": 3}`, `"files" is a number, want a list`},
		{`{"n": "x"}`, `"n" is text, want a whole number`},
		{`{"n": 1.5}`, `"n" is a number, want a whole number`},
	} {
		err := json.Unmarshal([]byte(x.in), &doc)
		if err == nil {
			t.Fatalf("%s decoded", x.in)
		}
		if got := JSON(err); got != x.want {
			t.Errorf("%s: %q, want %q", x.in, got, x.want)
		}
	}
	if !Empty([]byte(" \n\t")) || Empty([]byte(" {")) {
		t.Error("Empty")
	}
}
