package console

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestMessages: every language has every key, and every key the templates
// and handlers name is there.
func TestMessages(t *testing.T) {
	for lang, m := range messages {
		for key := range messages["en"] {
			if m[key] == "" {
				t.Errorf("%s lacks %q", lang, key)
			}
		}
		for key := range m {
			if _, ok := messages["en"][key]; !ok {
				t.Errorf("%s has %q, which English lacks", lang, key)
			}
		}
	}
	used := regexp.MustCompile(`\bt \$?\.?[A-Za-z]* ?"([a-z0-9_.]+)"|tr\([a-z.]+, "([a-z0-9_.]+)"\)|"(ok\.[a-z_]+|role\.[a-z]+)"`)
	names, _ := fs.Glob(templateFS, "templates/*.html")
	found := 0
	for _, n := range names {
		b, _ := fs.ReadFile(templateFS, n)
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			key := m[1] + m[2] + m[3]
			found++
			if _, ok := messages["en"][key]; !ok {
				t.Errorf("%s uses %q, which has no message", n, key)
			}
		}
	}
	if found < 100 {
		t.Errorf("found %d uses of messages in the templates: the pattern misses them", found)
	}
}

// TestSafeNext: where sign-in goes next is a path of the console, never
// another site.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/members?q=1": "/members?q=1", "": "/", "//evil.example/": "/", "/\\evil.example": "/",
		"https://evil.example/": "/", "/signin?next=/": "/", "members": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "//x", "/\\x", "https://x", "/members/M1", "/%2f%2fx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
			t.Fatalf("safeNext(%q) = %q leaves the console", s, got)
		}
	})
}

// TestNumbers: figures are written with each language's grouping and
// decimal mark, from integers only.
func TestNumbers(t *testing.T) {
	p := int64(1234)
	for _, c := range []struct{ got, want string }{
		{number("en", 1234567), "1,234,567"}, {number("tr", 1234567), "1.234.567"}, {number("en", -1000), "-1,000"},
		{permille("en", &p), "123.4 %"}, {permille("tr", &p), "%123,4"}, {permille("en", nil), "—"},
		{ratio("en", 14, 3), "4.6"}, {ratio("tr", 14, 3), "4,6"}, {ratio("en", 1, 0), "—"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}
