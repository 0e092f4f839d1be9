package accounting

// Roles lists every role in Role order, the order reports list them in.
func Roles() []Role {
	out := make([]Role, numRoles)
	for i := range out {
		out[i] = Role(i)
	}
	return out
}
