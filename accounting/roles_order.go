package accounting

// Roles lists every role in Role order, the order reports list them in.
func Roles() []Role {
	out := make([]Role, numRoles)
	for i := range out {
		out[i] = Role(i)
	}
	return out
}

// Keys of Phase.ByRole that are not roles: the decode pass's own buffers.
const (
	// PhaseDecoded is the decoded float32 weights.
	PhaseDecoded = "decoded"
	// PhaseActivations is the forward pass's inputs and outputs.
	PhaseActivations = "activations"
)

// PhaseKeys lists the keys of Phase.ByRole in order: every role's name in
// Role order, then PhaseDecoded and PhaseActivations.
func PhaseKeys() []string {
	out := make([]string, 0, numRoles+2)
	for _, r := range Roles() {
		out = append(out, r.String())
	}
	return append(out, PhaseDecoded, PhaseActivations)
}
