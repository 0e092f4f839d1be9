// Package rules reads a user's encoding schemes from a YAML file, so an
// in-house codec is recognised without code changes (qinsaudit audit
// --rules FILE). A rule has the same form as a row of the built-in scheme
// table; the built-in QINS schemes are written this way in
// fixtures/rules/qins.yaml, and a test checks they load to the built-ins.
package rules

import (
	"bytes"
	"fmt"
	"io"

	yaml "go.yaml.in/yaml/v3"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/humane"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// File is a rules file.
type File struct {
	Schemes []Scheme `yaml:"schemes"`
}

// Scheme is accounting.Scheme as YAML.
type Scheme struct {
	Name       string `yaml:"name"`
	Doc        string `yaml:"doc"`
	Main       Part   `yaml:"main"`
	Sides      []Part `yaml:"sides"`
	WeightBits int    `yaml:"weight_bits"`
	Packed     string `yaml:"packed"`
	Method     string `yaml:"method"`
}

// Part is accounting.PartRule as YAML.
type Part struct {
	Leaf     string   `yaml:"leaf"`
	Part     string   `yaml:"part"`
	DTypes   []string `yaml:"dtypes"`
	Optional bool     `yaml:"optional"`
	NeedBits int      `yaml:"need_bits"`
}

// MaxBytes bounds a rules file; real ones are a few KiB.
const MaxBytes = safeio.SideFileLimit

// Load reads the schemes of a rules file. Unknown keys, unknown dtypes and
// incomplete rules are errors naming the file and the line.
//
// Only a regular file of at most MaxBytes is read.
func Load(path string) ([]accounting.Scheme, error) {
	data, err := safeio.ReadFileLimit(path, MaxBytes)
	if err != nil {
		return nil, err
	}
	if humane.Empty(data) {
		return nil, fmt.Errorf("%s: empty file: no schemes", path)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %s", path, humane.YAML(err))
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %s", path, humane.YAML(err))
	}
	lines := schemeLines(&root)
	out := make([]accounting.Scheme, 0, len(f.Schemes))
	seen := map[string]bool{}
	for i, s := range f.Schemes {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		where := fmt.Sprintf("%s:%d: scheme %q", path, line, s.Name)
		if s.Name == "" {
			return nil, fmt.Errorf("%s:%d: scheme %d has no name", path, line, i)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("%s: defined twice", where)
		}
		seen[s.Name] = true
		sc, err := s.scheme()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// schemeLines returns the line of each entry of "schemes".
func schemeLines(root *yaml.Node) []int {
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "schemes" {
			var lines []int
			for _, n := range m.Content[i+1].Content {
				lines = append(lines, n.Line)
			}
			return lines
		}
	}
	return nil
}

func (s Scheme) scheme() (accounting.Scheme, error) {
	if s.Main.Leaf == "" {
		return accounting.Scheme{}, fmt.Errorf("main: no leaf (the main tensor's name within its module, e.g. qweight)")
	}
	if s.Packed != "" && s.Packed != "rows" && s.Packed != "cols" {
		return accounting.Scheme{}, fmt.Errorf("packed: %q is not rows or cols", s.Packed)
	}
	if s.WeightBits < 0 || s.WeightBits > 64 {
		return accounting.Scheme{}, fmt.Errorf("weight_bits: %d is out of range", s.WeightBits)
	}
	main, err := s.Main.rule("main")
	if err != nil {
		return accounting.Scheme{}, err
	}
	if main.Part == "" {
		main.Part = accounting.PartWeight
	}
	out := accounting.Scheme{Name: s.Name, Doc: s.Doc, Main: main, WeightBits: s.WeightBits, Packed: s.Packed, Method: s.Method}
	for i, p := range s.Sides {
		r, err := p.rule(fmt.Sprintf("sides[%d]", i))
		if err != nil {
			return accounting.Scheme{}, err
		}
		if r.Part == "" {
			return accounting.Scheme{}, fmt.Errorf("sides[%d] (%s): no part (sign, scale, zero_point, range, ...)", i, p.Leaf)
		}
		out.Sides = append(out.Sides, r)
	}
	return out, nil
}

func (p Part) rule(where string) (accounting.PartRule, error) {
	if p.Leaf == "" {
		return accounting.PartRule{}, fmt.Errorf("%s: no leaf", where)
	}
	for _, d := range p.DTypes {
		if _, ok := accounting.LookupDType(d); !ok {
			return accounting.PartRule{}, fmt.Errorf("%s (%s): unknown dtype %q (use PyTorch names: float32, uint8, int8, ...)", where, p.Leaf, d)
		}
	}
	if p.NeedBits < 0 || p.NeedBits > 64 {
		return accounting.PartRule{}, fmt.Errorf("%s (%s): need_bits %d is out of range", where, p.Leaf, p.NeedBits)
	}
	return accounting.PartRule{Leaf: p.Leaf, Part: accounting.Part(p.Part), DTypes: p.DTypes, Optional: p.Optional, NeedBits: p.NeedBits}, nil
}
