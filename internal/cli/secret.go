package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadSecret reads a secret (a PIN, a password) named what from in: at a
// terminal it asks without echo (twice when it sets the secret), else it
// takes the first line, of at most max bytes.
func ReadSecret(in *os.File, prompt io.Writer, what string, twice bool, max int) (string, error) {
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(prompt, "%s: ", what)
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", what, err)
		}
		if !twice {
			return string(a), nil
		}
		fmt.Fprintf(prompt, "the same %s again: ", what)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", what, err)
		}
		if string(a) != string(b) {
			return "", fmt.Errorf("%w: the two entries of the %s differ", ErrUsage, what)
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, int64(max))).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the %s: %w", what, err)
	}
	s := strings.TrimRight(line, "\r\n")
	if s == "" {
		return "", fmt.Errorf("%w: give the %s on standard input (at a terminal it is asked for)", ErrUsage, what)
	}
	return s, nil
}
