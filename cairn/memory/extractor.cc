#include "cairn/memory/extractor.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace cairn::memory {
namespace {

struct Token {
  std::string text;   // as written
  std::string lower;
  bool cap = false;   // starts with an upper-case letter
  size_t sentence = 0;
  bool first = false;  // first word of its sentence
};

bool IsWordChar(unsigned char c) { return std::isalnum(c) || c == '\'' || c == '-' || c == '&' || c >= 0x80; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Contractions split into the words the patterns look for.
void PushWord(std::vector<Token>& out, std::string word, size_t sentence, bool first) {
  {
    bool emitted = false;
    // Curly apostrophes are written as three bytes; normalize them to '.
    std::string q;
    for (size_t i = 0; i < word.size();) {
      if (word.compare(i, 3, "\xE2\x80\x99") == 0) {
        q.push_back('\'');
        i += 3;
      } else {
        q.push_back(word[i++]);
      }
    }
    size_t b = 0, e = q.size();
    while (e > b && (q[e - 1] == '\'' || q[e - 1] == '-')) --e;
    while (b < e && (q[b] == '\'' || q[b] == '-')) ++b;
    if (b == e) return;
    q = q.substr(b, e - b);
    std::string low = Lower(q);
    auto emit = [&](std::string text, std::string lower) {
      Token t;
      t.cap = std::isupper(static_cast<unsigned char>(text[0])) != 0;
      t.text = std::move(text);
      t.lower = std::move(lower);
      t.sentence = sentence;
      t.first = first && !emitted;
      emitted = true;
      out.push_back(std::move(t));
    };
    struct Split { const char* suffix; const char* a; const char* b; };
    static constexpr Split kSplits[] = {{"n't", nullptr, "not"}, {"'m", nullptr, "am"}, {"'s", nullptr, "'s"},
                                        {"'re", nullptr, "are"}, {"'ve", nullptr, "have"}, {"'ll", nullptr, "will"},
                                        {"'d", nullptr, "would"}};
    for (const Split& s : kSplits) {
      std::string_view suf(s.suffix);
      if (low.size() > suf.size() && low.compare(low.size() - suf.size(), suf.size(), suf) == 0) {
        std::string head = q.substr(0, q.size() - suf.size());
        std::string head_low = low.substr(0, low.size() - suf.size());
        if (suf == "n't") {
          if (head_low == "can" || head_low == "ca") head = "can", head_low = "can";
          if (head_low == "wo") head = "will", head_low = "will";
        }
        emit(head, head_low);
        if (std::string_view(s.b) != "'s") emit(s.b, s.b);
        return;
      }
    }
    emit(q, low);
  }
}

std::vector<Token> Tokenize(std::string_view text) {
  std::vector<Token> out;
  size_t sentence = 0;
  bool at_start = true;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (IsWordChar(c)) {
      size_t j = i;
      while (j < text.size() && IsWordChar(static_cast<unsigned char>(text[j]))) ++j;
      PushWord(out, std::string(text.substr(i, j - i)), sentence, at_start);
      at_start = false;
      i = j;
      continue;
    }
    if (c == '.' || c == '!' || c == '?' || c == '\n' || c == ';' || c == ':') {
      // A period inside a number or an abbreviation-like "Dr." still ends the sentence: the
      // rules only need a rough split.
      if (!at_start) ++sentence;
      at_start = true;
    } else if (c == ',' || c == '(' || c == ')' || c == '"') {
      // A clause break: patterns never run across it; kept as a token so they can see it.
      Token t;
      t.text = t.lower = ",";
      t.sentence = sentence;
      out.push_back(std::move(t));
    }
    ++i;
  }
  return out;
}

const absl::flat_hash_set<std::string>& CommonWords() {
  static const auto* words = new absl::flat_hash_set<std::string>{
      "the", "a", "an", "i", "we", "you", "he", "she", "it", "they", "this", "that", "these", "those", "my", "our",
      "your", "his", "her", "their", "hey", "hi", "hello", "yes", "yeah", "no", "oh", "wow", "thanks", "thank",
      "sure", "well", "so", "and", "but", "or", "if", "when", "what", "why", "how", "where", "who", "which", "just",
      "also", "really", "great", "good", "nice", "awesome", "cool", "glad", "sorry", "haha", "lol", "ok", "okay",
      "there", "here", "then", "now", "maybe", "absolutely", "definitely", "totally", "for", "in", "on", "at", "to",
      "of", "with", "from", "by", "as", "is", "am", "are", "was", "were", "be", "do", "did", "does", "have", "has",
      "had", "can", "could", "would", "should", "will", "not", "all", "some", "any", "one", "me", "us", "them",
      "love", "like", "let", "lets", "congrats", "congratulations", "plus", "anyway", "right", "true", "agreed",
      "exactly", "same", "yesterday", "today", "tomorrow", "tonight", "last", "next", "please", "its", "im", "ive", "youre", "dont", "i'm", "it's", "sounds", "that's"};
  return *words;
}

const absl::flat_hash_set<std::string>& OrgSuffixes() {
  static const auto* words = new absl::flat_hash_set<std::string>{
      "inc", "corp", "corporation", "ltd", "llc", "gmbh", "company", "co", "university", "college", "school",
      "institute", "bank", "group", "labs", "hospital", "foundation", "agency", "ministry", "club", "center",
      "centre"};
  return *words;
}

const absl::flat_hash_set<std::string>& Months() {
  static const auto* words = new absl::flat_hash_set<std::string>{
      "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
      "november", "december"};
  return *words;
}

bool IsNumber(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::string Join(const std::vector<Token>& t, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (!out.empty()) out += ' ';
    out += t[i].text;
  }
  return out;
}

class Collector {
 public:
  void Add(std::string name, std::string type) {
    std::string key = NormalizeName(name);
    if (key.empty()) return;
    if (!seen_.insert(key).second) return;
    out_.push_back({std::move(name), std::move(type)});
  }
  std::vector<ExtractedEntity> Take() { return std::move(out_); }

 private:
  absl::flat_hash_set<std::string> seen_;
  std::vector<ExtractedEntity> out_;
};

// A verb phrase that states a fact, in lower-case words.
struct Pattern {
  std::vector<std::string_view> words;
  std::string_view predicate;
};

const std::vector<Pattern>& Patterns() {
  static const auto* p = new std::vector<Pattern>{
      {{"works", "at"}, "works_at"},     {{"works", "for"}, "works_at"},  {{"work", "at"}, "works_at"},
      {{"work", "for"}, "works_at"},     {{"working", "at"}, "works_at"}, {{"working", "for"}, "works_at"},
      {{"lives", "in"}, "lives_in"},     {{"live", "in"}, "lives_in"},    {{"living", "in"}, "lives_in"},
      {{"moved", "to"}, "lives_in"},     {{"move", "to"}, "lives_in"},    {{"likes"}, "likes"},
      {{"like"}, "likes"},               {{"loves"}, "likes"},            {{"love"}, "likes"},
      {{"enjoys"}, "likes"},             {{"enjoy"}, "likes"},            {{"married", "to"}, "married_to"},
      {{"born", "in"}, "born_in"},       {{"is", "a"}, "is"},             {{"is", "an"}, "is"},
      {{"am", "a"}, "is"},               {{"am", "an"}, "is"},            {{"is", "the"}, "is"},
  };
  return *p;
}

bool IsNegation(std::string_view w) { return w == "not" || w == "never" || w == "no" || w == "longer"; }
bool IsAuxiliary(std::string_view w) {
  return w == "does" || w == "do" || w == "did" || w == "still" || w == "now" || w == "also" || w == "really" ||
         w == "is" || w == "am" || w == "are" || w == "was" || w == "has" || w == "have" || w == "recently" ||
         w == "just" || w == "currently" || w == "actually";
}
bool EndsObject(const Token& t) {
  static const absl::flat_hash_set<std::string> stops = {
      ",", "and", "but", "because", "since", "so", "when", "while", "where", "which", "who", "that", "with",
      "after", "before", "until", "though", "although", "if", "or", "as", "to", "for", "now", "too", "lately",
      "anymore", "since", "last", "this", "these", "yesterday", "today"};
  return stops.count(t.lower) > 0;
}

void ExtractFacts(const std::vector<Token>& t, const ExtractContext& ctx, std::vector<ExtractedFact>& facts) {
  for (size_t i = 0; i < t.size(); ++i) {
    // Subject: "I" (the speaker) or a capitalized run ending at i.
    std::string subject;
    if (t[i].lower == "i") {
      if (ctx.speaker.empty()) continue;
      subject = ctx.speaker;
    } else if (t[i].cap && !(t[i].first && CommonWords().count(t[i].lower)) && t[i].lower != ",") {
      if (i + 1 < t.size() && t[i + 1].cap && t[i + 1].sentence == t[i].sentence) continue;  // not the run's end
      size_t b = i;
      while (b > 0 && t[b - 1].cap && t[b - 1].sentence == t[i].sentence &&
             !(t[b - 1].first && CommonWords().count(t[b - 1].lower)))
        --b;
      subject = Join(t, b, i + 1);
    } else {
      continue;
    }
    size_t j = i + 1;
    bool negated = false;
    while (j < t.size() && t[j].sentence == t[i].sentence && j - i <= 4 &&
           (IsNegation(t[j].lower) || (IsAuxiliary(t[j].lower) && !(j + 1 < t.size() &&
                                                                     (t[j + 1].lower == "a" || t[j + 1].lower == "an" ||
                                                                      t[j + 1].lower == "the"))))) {
      if (IsNegation(t[j].lower)) negated = true;
      ++j;
    }
    for (const Pattern& p : Patterns()) {
      size_t k = j;
      bool ok = true;
      for (std::string_view w : p.words) {
        if (k >= t.size() || t[k].sentence != t[i].sentence || t[k].lower != w) {
          ok = false;
          break;
        }
        ++k;
      }
      if (!ok) continue;
      // "is not a" puts the negation after "is": look once more.
      if (p.predicate == "is" && k < t.size() && t[k].lower == "not") continue;
      size_t start = k;
      while (start < t.size() && t[start].sentence == t[i].sentence &&
             (t[start].lower == "the" || t[start].lower == "a" || t[start].lower == "an") && p.predicate != "is")
        ++start;
      size_t end = start;
      while (end < t.size() && t[end].sentence == t[i].sentence && end - start < 5 && !EndsObject(t[end])) ++end;
      if (end == start) break;
      ExtractedFact f;
      f.subject = subject;
      f.predicate = std::string(p.predicate);
      f.object = Join(t, start, end);
      f.object_is_entity = t[start].cap;
      f.negated = negated;
      f.confidence = t[i].lower == "i" ? 0.7 : 0.6;
      facts.push_back(std::move(f));
      break;
    }
  }
}

void ExtractTyped(std::string_view text, Collector& out) {
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t j = i;
    while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
    std::string_view w = text.substr(i, j - i);
    while (!w.empty() && std::string_view(".,;:!?)\"'").find(w.back()) != std::string_view::npos) w.remove_suffix(1);
    if (w.substr(0, 7) == "http://" || w.substr(0, 8) == "https://" || w.substr(0, 4) == "www.") {
      out.Add(std::string(w), "url");
    } else if (size_t at = w.find('@'); at != std::string_view::npos && at > 0 &&
                                        w.find('.', at) != std::string_view::npos && w.back() != '.') {
      out.Add(std::string(w), "email");
    } else if (w.size() == 10 && w[4] == '-' && w[7] == '-' && IsNumber(w.substr(0, 4)) && IsNumber(w.substr(5, 2)) &&
               IsNumber(w.substr(8, 2))) {
      out.Add(std::string(w), "date");
    }
    i = j;
  }
}

}  // namespace

std::string NormalizeName(std::string_view name) {
  std::string out;
  bool space = false;
  for (char c : name) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool IsSingleValued(std::string_view predicate) {
  return predicate == "works_at" || predicate == "lives_in" || predicate == "married_to" || predicate == "born_in" ||
         predicate == "age";
}

absl::StatusOr<Extraction> RuleExtractor::Extract(std::string_view text, const ExtractContext& context) const {
  Extraction result;
  const std::vector<Token> t = Tokenize(text);
  Collector entities;
  for (size_t i = 0; i < t.size();) {
    // Dates: "8 May 2023", "May 8, 2023", "May 2023".
    if (Months().count(t[i].lower) && t[i].cap) {
      size_t b = i, e = i + 1;
      if (b > 0 && IsNumber(t[b - 1].lower) && t[b - 1].lower.size() <= 2) --b;
      if (e < t.size() && IsNumber(t[e].lower) && t[e].lower.size() <= 2) ++e;
      if (e < t.size() && t[e].lower == ",") ++e;
      if (e < t.size() && IsNumber(t[e].lower) && t[e].lower.size() == 4) ++e;
      else if (e > i + 1 && t[e - 1].lower == ",") --e;
      if (e - b > 1) {
        std::string name;
        for (size_t k = b; k < e; ++k)
          if (t[k].lower != ",") {
            if (!name.empty()) name += ' ';
            name += t[k].text;
          }
        entities.Add(name, "date");
        i = e;
        continue;
      }
    }
    if (t[i].cap && !(t[i].first && CommonWords().count(t[i].lower)) && !Months().count(t[i].lower)) {
      size_t e = i + 1;
      while (e < t.size() && t[e].sentence == t[i].sentence &&
             (t[e].cap || ((t[e].lower == "of" || t[e].lower == "de") && e + 1 < t.size() && t[e + 1].cap)))
        ++e;
      std::string type = "person";
      if (OrgSuffixes().count(t[e - 1].lower) || (e - i > 1 && OrgSuffixes().count(t[i].lower))) {
        type = "organization";
      } else if (i > 0 && (t[i - 1].lower == "in" || t[i - 1].lower == "from" || t[i - 1].lower == "to" ||
                           t[i - 1].lower == "near")) {
        type = "place";
      } else if (e - i > 2) {
        type = "thing";
      }
      entities.Add(Join(t, i, e), type);
      i = e;
      continue;
    }
    ++i;
  }
  if (context.is_known_alias) {
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i].lower == "," || CommonWords().count(t[i].lower)) continue;
      std::string key;
      for (size_t n = 1; n <= 3 && i + n <= t.size(); ++n) {
        if (t[i + n - 1].sentence != t[i].sentence || t[i + n - 1].lower == ",") break;
        if (n > 1) key += ' ';
        key += t[i + n - 1].lower;
        if (context.is_known_alias(key)) entities.Add(Join(t, i, i + n), "thing");
      }
    }
  }
  ExtractTyped(text, entities);
  ExtractFacts(t, context, result.facts);
  for (const ExtractedFact& f : result.facts) {
    entities.Add(f.subject, "person");
    if (f.object_is_entity) entities.Add(f.object, f.predicate == "lives_in" || f.predicate == "born_in" ? "place"
                                                   : f.predicate == "works_at"                           ? "organization"
                                                                                                         : "thing");
  }
  result.entities = entities.Take();
  return result;
}

}  // namespace cairn::memory
