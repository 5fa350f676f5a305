// Package version holds the build's version string, set by the Makefile through -ldflags.
package version

// Version is overwritten at link time; "dev" marks a plain 'go build'.
var Version = "dev"
