//go:build !linux

package accounting

func adviseHuge[T any]([]T) {}
