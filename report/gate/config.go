// Package gate decides whether a model passes CI: budgets per role or
// module, forbidden findings, waivers, and regressions against a saved
// baseline report. Evaluate is pure: it reads reports and returns
// outcomes; the command line turns a failed gate into exit code 3.
package gate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	yaml "go.yaml.in/yaml/v3"

	"github.com/qinsaudit/qinsaudit/accounting"
	"github.com/qinsaudit/qinsaudit/internal/humane"
	"github.com/qinsaudit/qinsaudit/internal/neutral"
	"github.com/qinsaudit/qinsaudit/internal/safeio"
)

// Config is a gate's configuration, from qinsaudit.yaml or .toml:
//
//	budgets:
//	  - role: encoded_linear
//	    max_bits_per_weight: 9
//	forbid_findings: [encoded-but-uncompressed]
type Config struct {
	Budgets        []Budget      `yaml:"budgets" toml:"budgets"`
	ForbidFindings []FindingKind `yaml:"forbid_findings" toml:"forbid_findings"`
	// AllowFindings lets error findings of a kind pass. Every other error
	// finding fails the gate.
	AllowFindings []AllowFinding `yaml:"allow_findings" toml:"allow_findings"`
	Against       *Against       `yaml:"against" toml:"against"`
	Waivers       []Waiver       `yaml:"waivers" toml:"waivers"`
	// MaxHeapOverStored limits, when a heap profile is given, the bytes in
	// use over the stored bytes (1.1: at most 10% more than the file).
	MaxHeapOverStored *float64 `yaml:"max_heap_over_stored" toml:"max_heap_over_stored"`
}

// Budget limits one role, or every module or layer matching a glob.
// Exactly one of Role, Module, Layer is set.
type Budget struct {
	Role             *Role    `yaml:"role" toml:"role"`
	Module           *Glob    `yaml:"module" toml:"module"`
	Layer            *Glob    `yaml:"layer" toml:"layer"`
	MinRatio         *float64 `yaml:"min_ratio" toml:"min_ratio"`
	MaxBitsPerWeight *float64 `yaml:"max_bits_per_weight" toml:"max_bits_per_weight"`
	MaxStoredBytes   *Size    `yaml:"max_stored_bytes" toml:"max_stored_bytes"`
}

// Against compares the model with a saved report.
type Against struct {
	Report string `yaml:"report" toml:"report"`
	// MaxGrowth is the relative growth of stored bytes allowed per module
	// and in total ("1%"); MaxGrowthBytes the absolute growth. A change
	// fails when it exceeds every threshold set; with none set, any growth
	// fails.
	MaxGrowth      *Percent `yaml:"max_growth" toml:"max_growth"`
	MaxGrowthBytes *Size    `yaml:"max_growth_bytes" toml:"max_growth_bytes"`
	// IgnoreBelow is a byte floor: smaller changes are ignored.
	IgnoreBelow *Size `yaml:"ignore_below" toml:"ignore_below"`
}

// AllowFinding lets every error finding of one kind pass the gate, for a
// reason the outcome shows (a waiver does the same for some modules, until
// a date).
type AllowFinding struct {
	Kind   FindingKind `yaml:"kind" toml:"kind"`
	Reason string      `yaml:"reason" toml:"reason"`
}

// Waiver excuses failures of one check or finding kind, on modules matching
// a glob, until it expires. An expired waiver fails the gate.
type Waiver struct {
	Check   string `yaml:"check" toml:"check"` // a check name or a finding kind
	Module  *Glob  `yaml:"module" toml:"module"`
	Reason  string `yaml:"reason" toml:"reason"`
	Expires *Date  `yaml:"expires" toml:"expires"`
}

// Load reads a config file: YAML (.yaml, .yml) or TOML (.toml). Unknown
// keys and bad values are errors naming the file and the line.
//
// Only a regular file of at most MaxConfigBytes is read.
func Load(path string) (*Config, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".toml":
	default:
		return nil, fmt.Errorf("%s: config must be .yaml, .yml or .toml", path)
	}
	data, err := safeio.ReadFileLimit(path, MaxConfigBytes)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// MaxConfigBytes bounds a config file; real ones are a few KiB.
const MaxConfigBytes = safeio.SideFileLimit

// Parse reads config data in the format path's extension names; path is
// used in errors. Error messages quote at most a short excerpt of the
// input.
func Parse(path string, data []byte) (*Config, error) {
	var c Config
	var root yaml.Node // for the lines of values Validate refuses
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err == io.EOF {
			// No document (blanks or comments only): a gate of nothing
			// would pass whatever the model.
			return nil, fmt.Errorf("%s: %s", path, emptyConfig(data))
		} else if err != nil {
			return nil, fmt.Errorf("%s: %s", path, Clip(humane.YAML(err)))
		}
		_ = yaml.Unmarshal(data, &root) // it decoded above
	case ".toml":
		if humane.Empty(data) {
			return nil, fmt.Errorf("%s: %s", path, emptyConfig(data))
		}
		dec := toml.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s: %s", path, Clip(tomlErr(err)))
		}
	default:
		return nil, fmt.Errorf("%s: config must be .yaml, .yml or .toml", path)
	}
	if err := c.Validate(); err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			line := yamlLine(&root, ve.path...)
			if strings.EqualFold(filepath.Ext(path), ".toml") {
				line = tomlLine(data, ve.path...)
			}
			if line > 0 {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Clip shortens text quoted in an error message to its first 200 bytes: a
// 50 MB string in a config must not come back whole in one error line.
func Clip(s string) string { return neutral.Clip(s, 200) }

// valueError is a value Validate refuses, with the path of its key
// ("budgets", "2", "min_ratio") for the line.
type valueError struct {
	path []string
	msg  string
}

func (e *valueError) Error() string { return e.msg }

// yamlLine finds the line of the value at path (mapping keys and sequence
// indices) in a YAML document; 0 if it is not there.
func yamlLine(n *yaml.Node, path ...string) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, p := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}

// tomlLine finds the line of the key at path ("budgets", "2", "min_ratio":
// the key min_ratio in the third [[budgets]] table; "max_heap_over_stored":
// a top-level key) in a TOML document; 0 if it is not there in that form.
// go-toml's decoder gives no positions for a value it decoded, so the
// document is walked again with its parser (the package go-toml names
// unstable, for its API may change; only the keys and their offsets are
// used).
func tomlLine(data []byte, path ...string) int {
	var p unstable.Parser
	p.Reset(data)
	var table []string       // the current table's key
	seen := map[string]int{} // [[array tables]] seen so far, by key
	for p.NextExpression() {
		e := p.Expression()
		var key []string
		var first *unstable.Node
		it := e.Key()
		for it.Next() {
			if first == nil {
				first = it.Node()
			}
			key = append(key, string(it.Node().Data))
		}
		switch e.Kind {
		case unstable.ArrayTable:
			k := strings.Join(key, ".")
			table = append(key, strconv.Itoa(seen[k]))
			seen[k]++
		case unstable.Table:
			table = key
		case unstable.KeyValue:
			if first != nil && slices.Equal(append(slices.Clip(table), key...), path) {
				return 1 + bytes.Count(data[:min(int(first.Raw.Offset), len(data))], []byte("\n"))
			}
		}
	}
	return 0
}

// CheckLimit refuses a limit that is not a finite positive number: NaN
// compares false with everything, so a NaN limit would pass any model,
// and an infinite or negative one makes a check that cannot fail or
// cannot pass.
func CheckLimit(name string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return fmt.Errorf("%s %v: want a finite positive number", name, v)
	}
	return nil
}

func tomlErr(err error) string {
	var se *toml.StrictMissingError
	if errors.As(err, &se) {
		var keys []string
		for _, e := range se.Errors {
			row, _ := e.Position()
			keys = append(keys, fmt.Sprintf("line %d: unknown key %q", row, strings.Join(e.Key(), ".")))
		}
		return strings.Join(keys, "; ")
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		return fmt.Sprintf("line %d, column %d: %s", row, col, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return err.Error()
}

// emptyConfig says why a config without a document is refused.
func emptyConfig(data []byte) string {
	if humane.Empty(data) {
		return "empty file: no budgets, forbidden findings or saved report to check against"
	}
	return "no settings (only comments): no budgets, forbidden findings or saved report to check against"
}

// Validate checks what the types alone cannot: one selector per budget, at
// least one limit, a reason for each waiver.
func (c *Config) Validate() error {
	for i, b := range c.Budgets {
		n := 0
		for _, set := range []bool{b.Role != nil, b.Module != nil, b.Layer != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("budgets[%d]: give exactly one of role, module, layer", i)
		}
		if b.MinRatio == nil && b.MaxBitsPerWeight == nil && b.MaxStoredBytes == nil {
			return fmt.Errorf("budgets[%d]: no limit (min_ratio, max_bits_per_weight, max_stored_bytes)", i)
		}
		for _, l := range []struct {
			key string
			v   *float64
		}{{"min_ratio", b.MinRatio}, {"max_bits_per_weight", b.MaxBitsPerWeight}} {
			if l.v == nil {
				continue
			}
			if err := CheckLimit(l.key, *l.v); err != nil {
				return &valueError{[]string{"budgets", strconv.Itoa(i), l.key}, fmt.Sprintf("budgets[%d]: %v", i, err)}
			}
		}
	}
	for i, w := range c.Waivers {
		if w.Check == "" {
			return fmt.Errorf("waivers[%d]: no check (a check name or a finding kind)", i)
		}
		if strings.TrimSpace(w.Reason) == "" {
			return fmt.Errorf("waivers[%d] (%s): a waiver needs a reason", i, w.Check)
		}
	}
	for i, a := range c.AllowFindings {
		if a.Kind.Kind == "" {
			return fmt.Errorf("allow_findings[%d]: no kind", i)
		}
		if strings.TrimSpace(a.Reason) == "" {
			return fmt.Errorf("allow_findings[%d] (%s): allowing a finding needs a reason", i, a.Kind.Kind)
		}
	}
	if c.MaxHeapOverStored != nil {
		if err := CheckLimit("max_heap_over_stored", *c.MaxHeapOverStored); err != nil {
			return &valueError{[]string{"max_heap_over_stored"}, err.Error()}
		}
	}
	if c.Against != nil && c.Against.Report == "" {
		return errors.New("against: no report")
	}
	return nil
}

// The scalar types below parse and check themselves, so a bad value is
// reported with its line by either decoder: go-toml calls UnmarshalText,
// the YAML decoder UnmarshalYAML (which knows the line).

// Role is a role name or "total".
type Role struct{ Name string }

// UnmarshalText checks the role name.
func (r *Role) UnmarshalText(b []byte) error {
	s := string(b)
	if s != "total" {
		if _, err := accounting.ParseRole(s); err != nil {
			return fmt.Errorf("unknown role %q (want encoded_linear, embedding, untouched, optimizer_state or total)", Clip(s))
		}
	}
	r.Name = s
	return nil
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (r *Role) UnmarshalYAML(n *yaml.Node) error { return scalar(n, r.UnmarshalText) }

// FindingKind is a finding kind qinsaudit knows.
type FindingKind struct{ Kind string }

// UnmarshalText checks the kind.
func (f *FindingKind) UnmarshalText(b []byte) error {
	for _, k := range accounting.FindingKinds {
		if string(k) == string(b) {
			f.Kind = string(b)
			return nil
		}
	}
	var names []string
	for _, k := range accounting.FindingKinds {
		names = append(names, string(k))
	}
	return fmt.Errorf("unknown finding %q (known: %s)", Clip(string(b)), strings.Join(names, ", "))
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (f *FindingKind) UnmarshalYAML(n *yaml.Node) error { return scalar(n, f.UnmarshalText) }

// Glob matches module or layer names with path.Match syntax ("*" matches
// any run of characters, dots included).
type Glob struct{ Pattern string }

// UnmarshalText checks the pattern.
func (g *Glob) UnmarshalText(b []byte) error {
	if _, err := path.Match(string(b), ""); err != nil {
		return fmt.Errorf("bad pattern %q: %v", Clip(string(b)), err)
	}
	g.Pattern = string(b)
	return nil
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (g *Glob) UnmarshalYAML(n *yaml.Node) error { return scalar(n, g.UnmarshalText) }

// Match reports whether name matches.
func (g *Glob) Match(name string) bool {
	ok, _ := path.Match(g.Pattern, name)
	return ok
}

// Size is a byte count: an integer, or a number with a unit ("4.5MiB",
// "10 MB"; MB is 10^6, MiB 2^20).
type Size struct{ Bytes int64 }

// ParseSize reads a size.
func ParseSize(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return n, nil
	}
	n, err := accounting.ParseBytes(s)
	if err != nil || n > 1<<62 {
		return 0, fmt.Errorf("bad size %q (want bytes, or a number with B, KiB, MiB, GiB, kB, MB, GB)", Clip(s))
	}
	return int64(n), nil
}

// UnmarshalText parses the size.
func (z *Size) UnmarshalText(b []byte) error {
	n, err := ParseSize(string(b))
	z.Bytes = n
	return err
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (z *Size) UnmarshalYAML(n *yaml.Node) error { return scalar(n, z.UnmarshalText) }

// Percent is a percentage, "1%" or "0.5%".
type Percent struct{ Value float64 }

// ParsePercent reads a percentage.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(s), "%") || !(v >= 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad percentage %q (want e.g. 1%% or 0.5%%)", Clip(s))
	}
	return v, nil
}

// UnmarshalText parses the percentage.
func (p *Percent) UnmarshalText(b []byte) error {
	v, err := ParsePercent(string(b))
	p.Value = v
	return err
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error { return scalar(n, p.UnmarshalText) }

// Date is a day, YYYY-MM-DD; a waiver expires at its end (UTC).
type Date struct{ time.Time }

// UnmarshalText parses the date.
func (d *Date) UnmarshalText(b []byte) error {
	t, err := time.Parse(time.DateOnly, string(b))
	if err != nil {
		return fmt.Errorf("bad date %q (want YYYY-MM-DD)", Clip(string(b)))
	}
	d.Time = t
	return nil
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (d *Date) UnmarshalYAML(n *yaml.Node) error { return scalar(n, d.UnmarshalText) }

func scalar(n *yaml.Node, parse func([]byte) error) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a single value", n.Line)
	}
	if err := parse([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}
