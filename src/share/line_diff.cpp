#include "sbx/share/line_diff.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "sbx/share/display.hpp"

namespace sbx::share {

namespace {

constexpr std::size_t k_default_budget = 50'000'000;

// Myers' bisection over two int sequences (line ids), marking removed/added entries.
// The structure follows diff-match-patch's diff_bisect, with ranges instead of copies.
class Myers {
public:
    Myers(const std::vector<int>& a, const std::vector<int>& b, std::size_t budget, EditMarks& marks)
        : m_a(a), m_b(b), m_budget(budget), m_marks(marks) {}

    void run() { compare(0, m_a.size(), 0, m_b.size()); }

private:
    void compare(std::size_t a0, std::size_t a1, std::size_t b0, std::size_t b1) {
        // Iterative on the right half to keep the recursion depth at log-ish levels.
        while (true) {
            while (a0 < a1 && b0 < b1 && m_a[a0] == m_b[b0]) {
                ++a0;
                ++b0;
            }
            while (a0 < a1 && b0 < b1 && m_a[a1 - 1] == m_b[b1 - 1]) {
                --a1;
                --b1;
            }
            if (a0 == a1 || b0 == b1 || m_spent > m_budget) {
                for (std::size_t i = a0; i < a1; ++i) {
                    m_marks.removed[i] = true;
                }
                for (std::size_t j = b0; j < b1; ++j) {
                    m_marks.added[j] = true;
                }
                return;
            }
            std::size_t x = 0;
            std::size_t y = 0;
            if (!bisect(a0, a1, b0, b1, x, y)) {
                for (std::size_t i = a0; i < a1; ++i) {
                    m_marks.removed[i] = true;
                }
                for (std::size_t j = b0; j < b1; ++j) {
                    m_marks.added[j] = true;
                }
                return;
            }
            compare(a0, x, b0, y);
            a0 = x;
            b0 = y;
        }
    }

    // Finds a point (x, y) on a shortest edit path strictly inside the region.
    bool bisect(std::size_t a0, std::size_t a1, std::size_t b0, std::size_t b1, std::size_t& out_x,
                std::size_t& out_y) {
        const long n = static_cast<long>(a1 - a0);
        const long m = static_cast<long>(b1 - b0);
        const long max_d = (n + m + 1) / 2;
        const long offset = max_d;
        const long length = 2 * max_d;
        std::vector<long> v1(static_cast<std::size_t>(length + 2), -1);
        std::vector<long> v2(static_cast<std::size_t>(length + 2), -1);
        v1[static_cast<std::size_t>(offset + 1)] = 0;
        v2[static_cast<std::size_t>(offset + 1)] = 0;
        const long delta = n - m;
        const bool front = (delta % 2) != 0;
        long k1start = 0;
        long k1end = 0;
        long k2start = 0;
        long k2end = 0;
        auto A = [&](long i) { return m_a[a0 + static_cast<std::size_t>(i)]; };
        auto B = [&](long j) { return m_b[b0 + static_cast<std::size_t>(j)]; };
        auto at = [](std::vector<long>& v, long i) -> long& { return v[static_cast<std::size_t>(i)]; };
        for (long d = 0; d < max_d; ++d) {
            for (long k1 = -d + k1start; k1 <= d - k1end; k1 += 2) {
                long k1o = offset + k1;
                long x1 = 0;
                if (k1 == -d || (k1 != d && at(v1, k1o - 1) < at(v1, k1o + 1))) {
                    x1 = at(v1, k1o + 1);
                } else {
                    x1 = at(v1, k1o - 1) + 1;
                }
                long y1 = x1 - k1;
                while (x1 < n && y1 < m && A(x1) == B(y1)) {
                    ++x1;
                    ++y1;
                    ++m_spent;
                }
                at(v1, k1o) = x1;
                if (x1 > n) {
                    k1end += 2;
                } else if (y1 > m) {
                    k1start += 2;
                } else if (front) {
                    long k2o = offset + delta - k1;
                    if (k2o >= 0 && k2o < length && at(v2, k2o) != -1) {
                        long x2 = n - at(v2, k2o);
                        if (x1 >= x2) {
                            out_x = a0 + static_cast<std::size_t>(x1);
                            out_y = b0 + static_cast<std::size_t>(y1);
                            return true;
                        }
                    }
                }
            }
            for (long k2 = -d + k2start; k2 <= d - k2end; k2 += 2) {
                long k2o = offset + k2;
                long x2 = 0;
                if (k2 == -d || (k2 != d && at(v2, k2o - 1) < at(v2, k2o + 1))) {
                    x2 = at(v2, k2o + 1);
                } else {
                    x2 = at(v2, k2o - 1) + 1;
                }
                long y2 = x2 - k2;
                while (x2 < n && y2 < m && A(n - x2 - 1) == B(m - y2 - 1)) {
                    ++x2;
                    ++y2;
                    ++m_spent;
                }
                at(v2, k2o) = x2;
                if (x2 > n) {
                    k2end += 2;
                } else if (y2 > m) {
                    k2start += 2;
                } else if (!front) {
                    long k1o = offset + delta - k2;
                    if (k1o >= 0 && k1o < length && at(v1, k1o) != -1) {
                        long x1 = at(v1, k1o);
                        long y1 = offset + x1 - k1o;
                        x2 = n - x2;
                        if (x1 >= x2) {
                            out_x = a0 + static_cast<std::size_t>(x1);
                            out_y = b0 + static_cast<std::size_t>(y1);
                            return true;
                        }
                    }
                }
            }
            m_spent += static_cast<std::size_t>(2 * d + 2);
            if (m_spent > m_budget) {
                return false;
            }
        }
        return false;
    }

    const std::vector<int>& m_a;
    const std::vector<int>& m_b;
    std::size_t m_budget;
    std::size_t m_spent = 0;
    EditMarks& m_marks;
};

std::string hunk_range(std::size_t start, std::size_t count) {
    // start is 0-based; an empty range names the line before it, as diff -u does.
    if (count == 0) {
        return fmt::format("{},0", start);
    }
    if (count == 1) {
        return fmt::format("{}", start + 1);
    }
    return fmt::format("{},{}", start + 1, count);
}

struct Op {
    char tag;       // ' ', '-', '+'
    std::size_t a;  // index in a (for ' ' and '-'), else the a position before it
    std::size_t b;
    std::string_view line;
};

}  // namespace

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t nl = text.find('\n', start);
        if (nl == std::string_view::npos) {
            out.push_back(text.substr(start));
            break;
        }
        out.push_back(text.substr(start, nl - start + 1));
        start = nl + 1;
    }
    return out;
}

EditMarks diff_lines(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b,
                     std::size_t budget) {
    std::unordered_map<std::string_view, int> ids;
    auto to_ids = [&](const std::vector<std::string_view>& lines) {
        std::vector<int> out;
        out.reserve(lines.size());
        for (auto l : lines) {
            auto [it, inserted] = ids.try_emplace(l, static_cast<int>(ids.size()));
            out.push_back(it->second);
        }
        return out;
    };
    auto ia = to_ids(a);
    auto ib = to_ids(b);
    EditMarks marks;
    marks.removed.assign(a.size(), false);
    marks.added.assign(b.size(), false);
    Myers(ia, ib, budget == 0 ? k_default_budget : budget, marks).run();
    return marks;
}

UnifiedDiff unified_diff(std::string_view a_text, std::string_view b_text, const UnifiedOptions& options) {
    auto a = split_lines(a_text);
    auto b = split_lines(b_text);
    auto marks = diff_lines(a, b);
    std::vector<Op> ops;
    ops.reserve(a.size() + b.size());
    std::size_t i = 0;
    std::size_t j = 0;
    UnifiedDiff out;
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && marks.removed[i]) {
            ops.push_back({'-', i, j, a[i]});
            ++i;
            ++out.removed;
        } else if (j < b.size() && marks.added[j]) {
            ops.push_back({'+', i, j, b[j]});
            ++j;
            ++out.added;
        } else {
            ops.push_back({' ', i, j, a[i]});
            ++i;
            ++j;
        }
    }
    auto paint = [&](std::string_view code, const std::string& s) {
        return options.color ? fmt::format("\x1b[{}m{}\x1b[0m", code, s) : s;
    };
    const std::size_t ctx = options.context;
    std::size_t k = 0;
    while (k < ops.size()) {
        if (ops[k].tag == ' ') {
            ++k;
            continue;
        }
        // A hunk: from ctx lines before this change to ctx lines after the last change
        // that is at most 2*ctx unchanged lines away from the previous one.
        std::size_t first = k >= ctx ? k - ctx : 0;
        std::size_t last_change = k;
        std::size_t p = k + 1;
        while (p < ops.size()) {
            if (ops[p].tag != ' ') {
                last_change = p;
                ++p;
                continue;
            }
            std::size_t q = p;
            while (q < ops.size() && ops[q].tag == ' ') {
                ++q;
            }
            if (q < ops.size() && q - p <= 2 * ctx) {
                p = q;
                continue;
            }
            break;
        }
        std::size_t end = std::min(ops.size(), last_change + 1 + ctx);
        std::size_t a_count = 0;
        std::size_t b_count = 0;
        for (std::size_t r = first; r < end; ++r) {
            if (ops[r].tag != '+') {
                ++a_count;
            }
            if (ops[r].tag != '-') {
                ++b_count;
            }
        }
        out.text += paint("36", fmt::format("@@ -{} +{} @@", hunk_range(ops[first].a, a_count),
                                            hunk_range(ops[first].b, b_count)));
        out.text += '\n';
        for (std::size_t r = first; r < end; ++r) {
            std::string_view line = ops[r].line;
            bool newline = !line.empty() && line.back() == '\n';
            if (newline) {
                line.remove_suffix(1);
            }
            std::string text = std::string(1, ops[r].tag) + display_text(line);
            if (ops[r].tag == '-') {
                text = paint("31", text);
            } else if (ops[r].tag == '+') {
                text = paint("32", text);
            }
            out.text += text;
            out.text += '\n';
            if (!newline) {
                out.text += "\\ No newline at end of file\n";
            }
        }
        k = end;
    }
    return out;
}

}  // namespace sbx::share
