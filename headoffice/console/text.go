package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/offline-loyalty/terminal/cardnum"
	"github.com/offline-loyalty/terminal/headoffice"
	"github.com/offline-loyalty/terminal/money"
)

// messages are the console's words in each language; every key is in
// every language (TestMessages).
var messages = map[string]map[string]string{
	"en": {
		"app":                  "Head office",
		"lang.en":              "English",
		"lang.tr":              "Türkçe",
		"title.signin":         "Sign in",
		"title.overview":       "Overview",
		"title.members":        "Members",
		"title.member":         "Member",
		"title.terminals":      "Terminals",
		"title.audit":          "Audit log",
		"title.operators":      "Operators",
		"title.refused":        "Refused",
		"ov.asof":              "summed at",
		"title.flags":          "Flags",
		"f.kind":               "Kind",
		"f.all":                "all",
		"f.detail":             "Detail",
		"f.surprise":           "Verify the surprise draws of a day",
		"f.verify":             "Draw again",
		"f.result":             "%s: %d checkouts, %d paid a surprise, %d not won by their draw, %d drawn before their till joined.",
		"f.paid":               "Paid",
		"f.draw":               "Draw",
		"t.revoked":            "revoked",
		"t.revoke":             "Revoke",
		"t.qr":                 "The join code as a QR code, for the till's scanner",
		"ok.revoked":           "Terminal revoked: its connections are refused from now on.",
		"t.seen":               "Last seen",
		"t.rules":              "Rules",
		"t.chain":              "Hash chain",
		"t.online":             "online",
		"t.offline":            "offline",
		"t.broken":             "broken",
		"t.chainok":            "intact",
		"t.live":               "This list follows the terminals live.",
		"m.replace":            "Replace a card",
		"m.oldcard":            "Card lost or worn",
		"m.newcard":            "New card number",
		"m.doreplace":          "Replace",
		"m.merge":              "Merge a duplicate",
		"m.mergefrom":          "Member enrolled twice (its id)",
		"m.domerge":            "Merge into this member",
		"m.mergehint":          "Its balance, lots and cards move here; both histories stay.",
		"m.export":             "Export this member's data (JSON)",
		"ok.replaced":          "Card replaced; the old card is blocked at every till.",
		"ok.merged":            "Members merged.",
		"title.rules":          "Rules",
		"r.running":            "Running version",
		"r.preview":            "Check",
		"r.ok":                 "No problems: this would publish version %d. The change:",
		"r.problems":           "Not published: fix the problems shown at their fields.",
		"r.publish":            "Publish version %d",
		"r.earn":               "Earning and redeeming",
		"r.ppu":                "Points per currency unit",
		"r.max_amount":         "Largest sale without a manager",
		"r.discount_points":    "Points of a discount step",
		"r.discount_value":     "Worth of a step",
		"r.discount_min":       "Fewest points redeemed",
		"r.offline":            "Offline",
		"r.offline_points":     "Points a member may redeem a day offline",
		"r.stale_after":        "A member's snapshot is stale after",
		"r.tiers":              "Tiers",
		"r.min_spend":          "Spend in 12 months",
		"r.multiplier":         "Multiplier (basis points, 10000 = ×1)",
		"r.campaigns":          "Campaigns",
		"r.from":               "From (YYYY-MM-DD)",
		"r.to":                 "To (YYYY-MM-DD)",
		"r.bonus":              "Bonus points",
		"r.budget":             "Budget (points, 0 = none)",
		"r.surprise":           "Surprise and delight",
		"r.probability":        "Chance (basis points, 100 = 1 %)",
		"r.daily_budget":       "Daily budget per store",
		"r.check":              "Check the change",
		"r.check_hint":         "Nothing is published before you see the change.",
		"r.json":               "The whole document (JSON), for everything else",
		"r.history":            "Published versions",
		"r.version":            "Version",
		"r.current":            "running",
		"r.rollback":           "Publish version %d again",
		"r.builtin":            "None yet: the tills run the built-in rules.",
		"ok.published":         "Published; the tills take it when they next hear from head office.",
		"ok.rolled_back":       "The earlier version is published again, as a new version.",
		"nav.signout":          "Sign out",
		"signin.name":          "Name",
		"signin.password":      "Password",
		"signin.submit":        "Sign in",
		"signin.hint":          "Operators are added on the server: headoffice operator add --name NAME --role admin|support|analyst",
		"role.analyst":         "analyst",
		"role.support":         "support",
		"role.admin":           "admin",
		"err.session":          "Your session has ended: sign in again.",
		"err.origin":           "Refused: the request does not come from this console.",
		"err.csrf":             "Refused: the form is stale or not from this console. Reload the page and try again.",
		"err.role":             "Refused: this needs the %s role; you are %s.",
		"err.signin":           "Wrong name or password.",
		"err.locked":           "Too many wrong passwords: sign-in is locked; try again after",
		"err.internal":         "Something went wrong at head office; it is in the server's log.",
		"err.points":           "points are a whole number, such as 250 or -100",
		"err.self":             "you cannot disable yourself",
		"ok.adjusted":          "Balance adjusted; the change goes to the member's stores.",
		"ok.blocked":           "Card blocked; every till refuses it once the blocklist reaches it.",
		"ok.unblocked":         "Card unblocked.",
		"ok.operator_added":    "Operator added.",
		"ok.operator_disabled": "Operator disabled; their sessions are ended.",
		"ov.period":            "Period",
		"ov.from":              "From",
		"ov.to":                "To",
		"ov.store":             "Store",
		"ov.allstores":         "all stores",
		"ov.show":              "Show",
		"ov.today":             "Today",
		"ov.checkouts":         "Checkouts",
		"ov.sales":             "Sales",
		"ov.aov":               "Average order",
		"ov.members":           "Members who shopped",
		"ov.frequency":         "Visits per member",
		"ov.issued":            "Points issued",
		"ov.redeemed":          "Points redeemed",
		"ov.donated":           "Points donated",
		"ov.expired":           "Points expired",
		"ov.adjusted":          "Points adjusted",
		"ov.redemption":        "Redemption rate",
		"ov.enrollments":       "Enrollments",
		"ov.liability":         "Points liability",
		"ov.liability_note":    "%s points outstanding × value per point × (1 − breakage %s)",
		"ov.terminals":         "Terminals",
		"ov.bystore":           "By store",
		"ov.chart":             "Checkouts and points issued by day",
		"ov.day":               "Day",
		"ov.points":            "Points",
		"ov.flags":             "Flags",
		"ov.noflags":           "No flags.",
		"ov.rules":             "Rules version",
		"ov.none":              "—",
		"m.search":             "Card, member id, name or email",
		"m.find":               "Search",
		"m.nohits":             "No member matches.",
		"m.id":                 "Member",
		"m.name":               "Name",
		"m.email":              "Email",
		"m.tier":               "Tier",
		"m.balance":            "Balance",
		"m.status":             "Status",
		"m.card":               "Card",
		"m.cards":              "Cards",
		"m.lifetime":           "Lifetime points",
		"m.enrolled":           "Enrolled",
		"m.lastvisit":          "Last visit",
		"m.stores":             "Stores",
		"m.lots":               "Points by month earned",
		"m.month":              "Month",
		"m.adjust":             "Adjust the balance",
		"m.points":             "Points (negative to take back)",
		"m.reason":             "Reason",
		"m.apply":              "Adjust",
		"m.block":              "Block",
		"m.unblock":            "Unblock",
		"m.blocked":            "blocked",
		"m.active":             "active",
		"m.changes":            "Changes",
		"m.nochanges":          "No changes made at head office.",
		"m.merged":             "Merged into",
		"t.store":              "Store",
		"t.id":                 "Terminal",
		"t.state":              "State",
		"t.joined":             "joined",
		"t.waiting":            "waiting to join, code valid until",
		"t.events":             "Events held",
		"t.epochs":             "Databases",
		"t.flags":              "Flags",
		"t.add":                "Register a terminal",
		"t.name":               "Name",
		"t.register":           "Register",
		"t.code":               "Join code for %s — give it to the till once (pos-agent join), valid for 24 hours:",
		"t.none":               "No terminals yet.",
		"a.time":               "Time (UTC)",
		"a.operator":           "Operator",
		"a.action":             "Action",
		"a.subject":            "Subject",
		"a.before":             "Before",
		"a.after":              "After",
		"a.reason":             "Reason",
		"a.none":               "Nothing changed yet.",
		"o.name":               "Name",
		"o.role":               "Role",
		"o.state":              "State",
		"o.created":            "Added",
		"o.by":                 "By",
		"o.add":                "Add an operator",
		"o.password":           "Password (10 characters or more)",
		"o.submit":             "Add",
		"o.disable":            "Disable",
		"o.disabled":           "disabled",
		"o.active":             "active",
	},
	"tr": {
		"app":                  "Genel merkez",
		"lang.en":              "English",
		"lang.tr":              "Türkçe",
		"title.signin":         "Giriş",
		"title.overview":       "Genel bakış",
		"title.members":        "Üyeler",
		"title.member":         "Üye",
		"title.terminals":      "Kasalar",
		"title.audit":          "Denetim kaydı",
		"title.operators":      "Operatörler",
		"title.refused":        "Reddedildi",
		"ov.asof":              "toplanma",
		"title.flags":          "Uyarılar",
		"f.kind":               "Tür",
		"f.all":                "hepsi",
		"f.detail":             "Ayrıntı",
		"f.surprise":           "Bir günün sürpriz çekilişlerini doğrula",
		"f.verify":             "Yeniden çek",
		"f.result":             "%s: %d satış, %d sürpriz ödendi, %d çekilişiyle kazanılmadı, %d kasa katılmadan çekildi.",
		"f.paid":               "Ödenen",
		"f.draw":               "Çekiliş",
		"t.revoked":            "iptal edildi",
		"t.revoke":             "İptal et",
		"t.qr":                 "Katılma kodu, kasanın okuyucusu için QR kod olarak",
		"ok.revoked":           "Kasa iptal edildi: bağlantıları artık reddedilir.",
		"t.seen":               "Son görülme",
		"t.rules":              "Kurallar",
		"t.chain":              "Özet zinciri",
		"t.online":             "çevrimiçi",
		"t.offline":            "çevrimdışı",
		"t.broken":             "kırık",
		"t.chainok":            "sağlam",
		"t.live":               "Bu liste kasaları canlı izler.",
		"m.replace":            "Kartı değiştir",
		"m.oldcard":            "Kaybolan ya da yıpranan kart",
		"m.newcard":            "Yeni kart numarası",
		"m.doreplace":          "Değiştir",
		"m.merge":              "Mükerrer üyeyi birleştir",
		"m.mergefrom":          "İki kez kaydedilen üye (numarası)",
		"m.domerge":            "Bu üyeyle birleştir",
		"m.mergehint":          "Bakiyesi, puanları ve kartları buraya geçer; iki geçmiş de kalır.",
		"m.export":             "Bu üyenin verilerini dışa aktar (JSON)",
		"ok.replaced":          "Kart değiştirildi; eski kart her kasada engellendi.",
		"ok.merged":            "Üyeler birleştirildi.",
		"title.rules":          "Kurallar",
		"r.running":            "Çalışan sürüm",
		"r.preview":            "Denetim",
		"r.ok":                 "Sorun yok: bu, %d sürümünü yayımlar. Değişiklik:",
		"r.problems":           "Yayımlanmadı: alanlarında gösterilen sorunları düzeltin.",
		"r.publish":            "%d sürümünü yayımla",
		"r.earn":               "Kazanma ve harcama",
		"r.ppu":                "Para birimi başına puan",
		"r.max_amount":         "Yöneticisiz en büyük satış",
		"r.discount_points":    "Bir indirim adımının puanı",
		"r.discount_value":     "Bir adımın değeri",
		"r.discount_min":       "En az harcanan puan",
		"r.offline":            "Çevrimdışı",
		"r.offline_points":     "Üyenin çevrimdışı günde harcayabileceği puan",
		"r.stale_after":        "Üye bilgisinin eskidiği süre",
		"r.tiers":              "Seviyeler",
		"r.min_spend":          "12 aylık harcama",
		"r.multiplier":         "Çarpan (baz puan, 10000 = ×1)",
		"r.campaigns":          "Kampanyalar",
		"r.from":               "Başlangıç (YYYY-AA-GG)",
		"r.to":                 "Bitiş (YYYY-AA-GG)",
		"r.bonus":              "Ek puan",
		"r.budget":             "Bütçe (puan, 0 = yok)",
		"r.surprise":           "Sürpriz ödül",
		"r.probability":        "Olasılık (baz puan, 100 = %1)",
		"r.daily_budget":       "Mağaza başına günlük bütçe",
		"r.check":              "Değişikliği denetle",
		"r.check_hint":         "Değişikliği görmeden hiçbir şey yayımlanmaz.",
		"r.json":               "Belgenin tamamı (JSON), geri kalan her şey için",
		"r.history":            "Yayımlanan sürümler",
		"r.version":            "Sürüm",
		"r.current":            "çalışıyor",
		"r.rollback":           "%d sürümünü yeniden yayımla",
		"r.builtin":            "Henüz yok: kasalar yerleşik kuralları çalıştırıyor.",
		"ok.published":         "Yayımlandı; kasalar genel merkezle bir sonraki bağlantıda alır.",
		"ok.rolled_back":       "Önceki sürüm yeni bir sürüm olarak yeniden yayımlandı.",
		"nav.signout":          "Çıkış",
		"signin.name":          "Ad",
		"signin.password":      "Parola",
		"signin.submit":        "Giriş yap",
		"signin.hint":          "Operatörler sunucuda eklenir: headoffice operator add --name AD --role admin|support|analyst",
		"role.analyst":         "analist",
		"role.support":         "destek",
		"role.admin":           "yönetici",
		"err.session":          "Oturumunuz sona erdi: yeniden giriş yapın.",
		"err.origin":           "Reddedildi: istek bu konsoldan gelmiyor.",
		"err.csrf":             "Reddedildi: form eski ya da bu konsoldan değil. Sayfayı yenileyip yeniden deneyin.",
		"err.role":             "Reddedildi: bunun için %s rolü gerekir; sizin rolünüz %s.",
		"err.signin":           "Ad ya da parola yanlış.",
		"err.locked":           "Çok fazla yanlış parola: giriş kilitlendi; şu saatten sonra yeniden deneyin:",
		"err.internal":         "Genel merkezde bir sorun oluştu; sunucu kaydında yazılı.",
		"err.points":           "puan bir tam sayıdır, örneğin 250 ya da -100",
		"err.self":             "kendinizi devre dışı bırakamazsınız",
		"ok.adjusted":          "Bakiye düzeltildi; değişiklik üyenin mağazalarına gider.",
		"ok.blocked":           "Kart engellendi; engel listesi ulaşınca her kasa kartı reddeder.",
		"ok.unblocked":         "Kartın engeli kaldırıldı.",
		"ok.operator_added":    "Operatör eklendi.",
		"ok.operator_disabled": "Operatör devre dışı; oturumları kapatıldı.",
		"ov.period":            "Dönem",
		"ov.from":              "Başlangıç",
		"ov.to":                "Bitiş",
		"ov.store":             "Mağaza",
		"ov.allstores":         "tüm mağazalar",
		"ov.show":              "Göster",
		"ov.today":             "Bugün",
		"ov.checkouts":         "Satışlar",
		"ov.sales":             "Ciro",
		"ov.aov":               "Ortalama sepet",
		"ov.members":           "Alışveriş yapan üyeler",
		"ov.frequency":         "Üye başına ziyaret",
		"ov.issued":            "Verilen puan",
		"ov.redeemed":          "Kullanılan puan",
		"ov.donated":           "Bağışlanan puan",
		"ov.expired":           "Süresi dolan puan",
		"ov.adjusted":          "Düzeltilen puan",
		"ov.redemption":        "Kullanım oranı",
		"ov.enrollments":       "Yeni üyeler",
		"ov.liability":         "Puan yükümlülüğü",
		"ov.liability_note":    "%s bekleyen puan × puan değeri × (1 − kırılma %s)",
		"ov.terminals":         "Kasalar",
		"ov.bystore":           "Mağazaya göre",
		"ov.chart":             "Günlük satışlar ve verilen puan",
		"ov.day":               "Gün",
		"ov.points":            "Puan",
		"ov.flags":             "Uyarılar",
		"ov.noflags":           "Uyarı yok.",
		"ov.rules":             "Kural sürümü",
		"ov.none":              "—",
		"m.search":             "Kart, üye no, ad ya da e-posta",
		"m.find":               "Ara",
		"m.nohits":             "Eşleşen üye yok.",
		"m.id":                 "Üye",
		"m.name":               "Ad",
		"m.email":              "E-posta",
		"m.tier":               "Seviye",
		"m.balance":            "Bakiye",
		"m.status":             "Durum",
		"m.card":               "Kart",
		"m.cards":              "Kartlar",
		"m.lifetime":           "Toplam kazanılan puan",
		"m.enrolled":           "Üyelik",
		"m.lastvisit":          "Son ziyaret",
		"m.stores":             "Mağazalar",
		"m.lots":               "Kazanıldığı aya göre puanlar",
		"m.month":              "Ay",
		"m.adjust":             "Bakiyeyi düzelt",
		"m.points":             "Puan (geri almak için eksi)",
		"m.reason":             "Neden",
		"m.apply":              "Düzelt",
		"m.block":              "Engelle",
		"m.unblock":            "Engeli kaldır",
		"m.blocked":            "engelli",
		"m.active":             "etkin",
		"m.changes":            "Değişiklikler",
		"m.nochanges":          "Genel merkezde değişiklik yapılmadı.",
		"m.merged":             "Birleştirildiği üye",
		"t.store":              "Mağaza",
		"t.id":                 "Kasa",
		"t.state":              "Durum",
		"t.joined":             "katıldı",
		"t.waiting":            "katılmayı bekliyor, kod geçerlilik sonu",
		"t.events":             "Alınan olaylar",
		"t.epochs":             "Veritabanları",
		"t.flags":              "Uyarılar",
		"t.add":                "Kasa kaydet",
		"t.name":               "Ad",
		"t.register":           "Kaydet",
		"t.code":               "%s için katılma kodu — kasaya bir kez verin (pos-agent join), 24 saat geçerli:",
		"t.none":               "Henüz kasa yok.",
		"a.time":               "Zaman (UTC)",
		"a.operator":           "Operatör",
		"a.action":             "İşlem",
		"a.subject":            "Konu",
		"a.before":             "Önce",
		"a.after":              "Sonra",
		"a.reason":             "Neden",
		"a.none":               "Henüz değişiklik yok.",
		"o.name":               "Ad",
		"o.role":               "Rol",
		"o.state":              "Durum",
		"o.created":            "Eklenme",
		"o.by":                 "Ekleyen",
		"o.add":                "Operatör ekle",
		"o.password":           "Parola (en az 10 karakter)",
		"o.submit":             "Ekle",
		"o.disable":            "Devre dışı bırak",
		"o.disabled":           "devre dışı",
		"o.active":             "etkin",
	},
}

// tr is a message in lang (the key itself when missing, which
// TestMessages rules out).
func tr(lang, key string) string {
	if m, ok := messages[lang][key]; ok {
		return m
	}
	return key
}

// language is the console's language for r: the chosen one (cookie), else
// the browser's first known, else English.
func language(r *http.Request) string {
	if ck, err := r.Cookie(langCookie); err == nil {
		if _, ok := messages[ck.Value]; ok {
			return ck.Value
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if _, ok := messages[base]; ok {
			return base
		}
	}
	return "en"
}

// number writes an integer with the language's digit grouping.
func number(lang string, v int64) string {
	s := strconv.FormatInt(v, 10)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	sep := ","
	if lang == "tr" {
		sep = "."
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(sep)
		}
		b.WriteRune(r)
	}
	return sign + b.String()
}

// permille writes a rate per thousand as a percentage with one decimal.
func permille(lang string, p *int64) string {
	if p == nil {
		return tr(lang, "ov.none")
	}
	s := fmt.Sprintf("%d.%d %%", *p/10, *p%10)
	if lang == "tr" {
		s = fmt.Sprintf("%%%d,%d", *p/10, *p%10)
	}
	return s
}

// ratio writes a/b with one decimal ("—" when b is 0), integers only.
func ratio(lang string, a, b int64) string {
	if b <= 0 {
		return tr(lang, "ov.none")
	}
	tenths := a * 10 / b
	sep := "."
	if lang == "tr" {
		sep = ","
	}
	return fmt.Sprintf("%s%s%d", number(lang, tenths/10), sep, tenths%10)
}

// date writes a time in the language's order, UTC.
func date(lang string, t time.Time) string {
	if t.IsZero() {
		return tr(lang, "ov.none")
	}
	if lang == "tr" {
		return t.UTC().Format("02.01.2006 15:04")
	}
	return t.UTC().Format("2006-01-02 15:04")
}

var funcs = template.FuncMap{
	"t":      tr,
	"number": number,
	"money":  func(lang string, v int64, cur string) string { return money.Local(v, cur, lang) },
	"rate":   permille,
	"ratio":  ratio,
	"date":   date,
	"mask":   cardnum.Mask,
	"ptr":    func(v int64) *int64 { return &v },
	"printf": fmt.Sprintf,
	"langs":  func() []string { return []string{"en", "tr"} },
	"diff":   diffLines,
	"field": func(name, label string, d rulesData) map[string]any {
		return map[string]any{"Name": name, "Label": label, "Data": d}
	},
	"int64": func(v uint64) int64 { return int64(min(v, 1<<63-1)) },
	"roles": func() []string { return []string{headoffice.RoleAnalyst, headoffice.RoleSupport, headoffice.RoleAdmin} },
	"ratioInt": func(a, b int64) int64 {
		if b == 0 {
			return 0
		}
		return a / b
	},
	"sortedKeys": func(m map[string]int64) []string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys
	},
	"changes": func(lang string, cs []headoffice.Change) map[string]any {
		return map[string]any{"Lang": lang, "Changes": cs}
	},
	"flags": func(r headoffice.Report) []headoffice.Flag {
		all := append(append(append([]headoffice.Flag{}, r.NegativeBalances...), r.ChainBreaks...), r.Other...)
		sort.Slice(all, func(i, j int) bool { return all[i].Time.After(all[j].Time) })
		return all
	},
}

// chart is what console.js gives Chart.js: labels, series with their axis,
// and the axes' titles, in the page as JSON (no inline script).
type chart struct {
	JSON string
}

func chartOf(lang string, ov headoffice.Overview) chart {
	type series struct {
		Label string  `json:"label"`
		Data  []int64 `json:"data"`
		Axis  string  `json:"axis"`
		Kind  string  `json:"kind"`
	}
	var labels []string
	checkouts := series{Label: tr(lang, "ov.checkouts"), Axis: "y", Kind: "bar"}
	issued := series{Label: tr(lang, "ov.issued"), Axis: "y1", Kind: "line"}
	for _, d := range ov.Days {
		labels = append(labels, d.Day)
		checkouts.Data = append(checkouts.Data, d.Checkouts)
		issued.Data = append(issued.Data, d.Issued)
	}
	b, _ := json.Marshal(map[string]any{
		"labels": labels, "series": []series{checkouts, issued},
		"axes": map[string]string{"x": tr(lang, "ov.day"), "y": tr(lang, "ov.checkouts"), "y1": tr(lang, "ov.points")},
		"lang": lang,
	})
	return chart{JSON: string(b)}
}
