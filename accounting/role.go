package accounting

import "fmt"

// Role says what a tensor is for, as far as memory accounting goes.
type Role int

const (
	// EncodedLinear is a linear weight held in an encoded or quantized
	// form, together with its side tensors (signs, scales, zero points).
	EncodedLinear Role = iota
	// Embedding is an input embedding table or the output vocabulary
	// projection (lm_head), tied or not.
	Embedding
	// Untouched is everything else: plain float weights, biases, norms,
	// buffers, and a float weight left beside its encoded form.
	Untouched
	// OptimizerState is training state saved in a checkpoint; it is not
	// part of the model and stays out of the model totals.
	OptimizerState
	numRoles
)

var roleNames = [...]string{"encoded_linear", "embedding", "untouched", "optimizer_state"}

func (r Role) String() string {
	if r >= 0 && r < numRoles {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if n == s {
			return Role(i), nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want encoded_linear, embedding, untouched or optimizer_state)", s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	*r = v
	return err
}

// InModel reports whether tensors of this role count in the model totals.
func (r Role) InModel() bool { return r != OptimizerState }
