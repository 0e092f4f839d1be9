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
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	yaml "go.yaml.in/yaml/v3"

	"github.com/qinsaudit/qinsaudit/accounting"
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
	Against        *Against      `yaml:"against" toml:"against"`
	Waivers        []Waiver      `yaml:"waivers" toml:"waivers"`
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
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Config
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && err != io.EOF { // EOF: an empty file, an empty config
			return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n ", ""), "yaml: "))
		}
	case ".toml":
		dec := toml.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("%s: %s", path, tomlErr(err))
		}
	default:
		return nil, fmt.Errorf("%s: config must be .yaml, .yml or .toml", path)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
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
	}
	for i, w := range c.Waivers {
		if w.Check == "" {
			return fmt.Errorf("waivers[%d]: no check (a check name or a finding kind)", i)
		}
		if strings.TrimSpace(w.Reason) == "" {
			return fmt.Errorf("waivers[%d] (%s): a waiver needs a reason", i, w.Check)
		}
	}
	if c.MaxHeapOverStored != nil && *c.MaxHeapOverStored <= 0 {
		return fmt.Errorf("max_heap_over_stored: %g is not a positive ratio", *c.MaxHeapOverStored)
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
			return err
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
	return fmt.Errorf("unknown finding %q (known: %s)", b, strings.Join(names, ", "))
}

// UnmarshalYAML adds the line to UnmarshalText's error.
func (f *FindingKind) UnmarshalYAML(n *yaml.Node) error { return scalar(n, f.UnmarshalText) }

// Glob matches module or layer names with path.Match syntax ("*" matches
// any run of characters, dots included).
type Glob struct{ Pattern string }

// UnmarshalText checks the pattern.
func (g *Glob) UnmarshalText(b []byte) error {
	if _, err := path.Match(string(b), ""); err != nil {
		return fmt.Errorf("bad pattern %q: %v", b, err)
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
		return 0, fmt.Errorf("bad size %q (want bytes, or a number with B, KiB, MiB, GiB, kB, MB, GB)", s)
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
	if err != nil || !strings.HasSuffix(strings.TrimSpace(s), "%") || v < 0 {
		return 0, fmt.Errorf("bad percentage %q (want e.g. 1%% or 0.5%%)", s)
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
		return fmt.Errorf("bad date %q (want YYYY-MM-DD)", b)
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
