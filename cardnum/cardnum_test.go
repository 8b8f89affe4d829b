package cardnum

import "testing"

func TestMask(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2000000000015", "*********0015"},
		{"12345", "*2345"},
		{"1234", "****"},
		{"123", "***"},
		{"", ""},
	} {
		if got := Mask(c.in); got != c.want {
			t.Errorf("Mask(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
