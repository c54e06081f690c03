"""A set of competitive-programming problems with C++ and Java reference solutions (issue 21).

Each problem has a generator of test inputs, a Python reference that computes the expected output
of each, a C++ and a Java solution, and a mutation (an (old, new) source edit applied to both) that
makes a plausible wrong solution. Some problems have several correct outputs and a checker; the C++
and Java solutions of those print a different correct answer from the Python reference's, so only
the checker can accept them (one checker is a C++ judge program with testlib's convention); one
problem is interactive, judged by a C++ interactor. Used by tests/verify/code/test_code_cp_set.py (a sample) and by
`bench/code_verify_bench.py --only languages` (all of them, through `distillery verify code`).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

HEAD = "#include <bits/stdc++.h>\nusing namespace std;\n"
JHEAD = "import java.util.*;\n\npublic class Main {\n    public static void main(String[] args) {\n        Scanner in = new Scanner(System.in);\n"
JTAIL = "    }\n}\n"
MOD = 10**9 + 7


@dataclass(frozen=True)
class Problem:
    name: str
    generate: Callable[[random.Random], list[str]]  # test inputs
    solve: Callable[[str], str]  # the reference: expected output of one input
    cpp: str
    java: str
    mutation: tuple[str, str] | dict[str, tuple[str, str]]  # (old, new) for both solutions, or per language
    checker: str | dict | None = None  # a Python check(), or a judge program (testlib's convention)
    compare: str | None = None
    float_tol: float | None = None
    interactor: dict | None = None  # a judge program that talks to the solution

    def spec(self, language: str) -> dict:
        rng = random.Random(self.name)
        cases = [{"input": text, "output": self.solve(text)} for text in self.generate(rng)]
        spec = {"kind": "stdin", "language": language, "cases": cases, "time_limit_s": 4, "memory_mb": 256}
        for key in ("checker", "compare", "float_tol", "interactor"):
            if getattr(self, key) is not None:
                spec[key] = getattr(self, key)
        return spec

    def solution(self, language: str) -> str:
        return self.cpp if language == "cpp" else self.java

    def mutant(self, language: str) -> str:
        code = self.solution(language)
        old, new = self.mutation[language] if isinstance(self.mutation, dict) else self.mutation
        if old not in code:
            raise ValueError(f"{self.name}: mutation {old!r} not in the {language} solution")
        return code.replace(old, new, 1)


def ints(text: str) -> list[int]:
    return [int(token) for token in text.split()]


def numbers(rng: random.Random, count: int, low: int = -1000, high: int = 1000) -> list[int]:
    return [rng.randint(low, high) for _ in range(count)]


def array_inputs(
    rng: random.Random, low: int = -1000, high: int = 1000, sizes=(1, 2, 5, 10, 50)
) -> list[str]:
    out = []
    for size in sizes:
        values = numbers(rng, size, low, high)
        out.append(f"{size}\n{' '.join(map(str, values))}\n")
    return out


def cpp_main(body: str) -> str:
    return HEAD + "int main() {\n" + body + "}\n"


def java_main(body: str, imports: str = "") -> str:
    return imports + JHEAD + body + JTAIL


def read_array_cpp(kind: str = "long long") -> str:
    return f"    int n; cin >> n; vector<{kind}> a(n); for (auto &x : a) cin >> x;\n"


READ_ARRAY_JAVA = "        int n = in.nextInt(); long[] a = new long[n]; for (int i = 0; i < n; i++) a[i] = in.nextLong();\n"


def words(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice("abcdeiou") for _ in range(rng.randint(1, 8))) for _ in range(count)]


PROBLEMS: list[Problem] = []


def add(problem: Problem) -> None:
    PROBLEMS.append(problem)


# --- arithmetic ------------------------------------------------------------------------------------------

add(
    Problem(
        "sum_two",
        lambda r: [
            f"{a} {b}\n"
            for a, b in [(2, 3), (-5, 5), (10**12, 10**12)] + [tuple(numbers(r, 2)) for _ in range(3)]
        ],
        lambda t: f"{sum(ints(t))}\n",
        cpp_main("    long long a, b; cin >> a >> b; cout << a + b << endl;\n"),
        java_main("        long a = in.nextLong(), b = in.nextLong(); System.out.println(a + b);\n"),
        ("a + b", "a - b"),
    )
)
add(
    Problem(
        "sum_array",
        lambda r: array_inputs(r, -(10**9), 10**9),
        lambda t: f"{sum(ints(t)[1:])}\n",
        cpp_main(
            read_array_cpp()
            + "    long long s = 0; for (int i = 0; i < n; i++) s += a[i]; cout << s << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long s = 0; for (int i = 0; i < n; i++) s += a[i]; System.out.println(s);\n"
        ),
        ("for (int i = 0; i < n; i++) s", "for (int i = 1; i < n; i++) s"),
    )
)
add(
    Problem(
        "max_array",
        lambda r: array_inputs(r) + ["3\n-5 -2 -9\n"],
        lambda t: f"{max(ints(t)[1:])}\n",
        cpp_main(
            read_array_cpp()
            + "    long long m = a[0]; for (int i = 1; i < n; i++) if (a[i] > m) m = a[i]; cout << m << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long m = a[0]; for (int i = 1; i < n; i++) if (a[i] > m) m = a[i]; System.out.println(m);\n"
        ),
        ("if (a[i] > m)", "if (a[i] < m)"),
    )
)
add(
    Problem(
        "min_array",
        lambda r: array_inputs(r) + ["3\n5 2 9\n"],
        lambda t: f"{min(ints(t)[1:])}\n",
        cpp_main(
            read_array_cpp()
            + "    long long m = a[0]; for (int i = 1; i < n; i++) if (a[i] < m) m = a[i]; cout << m << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long m = a[0]; for (int i = 1; i < n; i++) if (a[i] < m) m = a[i]; System.out.println(m);\n"
        ),
        ("for (int i = 1; i < n; i++) if (a[i] < m)", "for (int i = 1; i < n - 1; i++) if (a[i] < m)"),
    )
)
add(
    Problem(
        "count_even",
        lambda r: array_inputs(r) + ["4\n-2 -1 0 7\n"],
        lambda t: f"{sum(1 for x in ints(t)[1:] if x % 2 == 0)}\n",
        cpp_main(
            read_array_cpp() + "    int c = 0; for (auto x : a) if (x % 2 == 0) c++; cout << c << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        int c = 0; for (long x : a) if (x % 2 == 0) c++; System.out.println(c);\n"
        ),
        ("x % 2 == 0", "x % 2 == 1"),
    )
)
add(
    Problem(
        "gcd_two",
        lambda r: (
            ["12 18\n", "7 13\n", "0 5\n", "1000000000 999999999\n"]
            + [f"{r.randint(1, 10**6)} {r.randint(1, 10**6)}\n" for _ in range(3)]
        ),
        lambda t: f"{math.gcd(*ints(t))}\n",
        cpp_main(
            "    long long a, b; cin >> a >> b; while (b != 0) { long long t = a % b; a = b; b = t; } cout << a << endl;\n"
        ),
        java_main(
            "        long a = in.nextLong(), b = in.nextLong(); while (b != 0) { long t = a % b; a = b; b = t; } System.out.println(a);\n"
        ),
        ("a = b; b = t;", "a = b; b = t / 2;"),
    )
)
add(
    Problem(
        "lcm_two",
        lambda r: (
            ["4 6\n", "1000000 999999\n", "7 7\n"]
            + [f"{r.randint(1, 10**5)} {r.randint(1, 10**5)}\n" for _ in range(3)]
        ),
        lambda t: f"{math.lcm(*ints(t))}\n",
        cpp_main("    long long a, b; cin >> a >> b; cout << a / __gcd(a, b) * b << endl;\n"),
        java_main(
            "        long a = in.nextLong(), b = in.nextLong(); long x = a, y = b; while (y != 0) { long t = x % y; x = y; y = t; } System.out.println(a / x * b);\n"
        ),
        ("* b", "* a"),
    )
)
add(
    Problem(
        "fibonacci_mod",
        lambda r: ["1\n", "2\n", "10\n", "90\n", "100000\n", f"{r.randint(1000, 90000)}\n"],
        lambda t: f"{_fib(ints(t)[0])}\n",
        cpp_main(
            "    int n; cin >> n; long long a = 0, b = 1; for (int i = 0; i < n; i++) { long long c = (a + b) % 1000000007; a = b; b = c; } cout << a << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(); long a = 0, b = 1; for (int i = 0; i < n; i++) { long c = (a + b) % 1000000007; a = b; b = c; } System.out.println(a);\n"
        ),
        ("(a + b) % 1000000007", "(a + b) % 1000000009"),
    )
)


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % MOD
    return a


add(
    Problem(
        "factorial_mod",
        lambda r: ["0\n", "1\n", "5\n", "20\n", "100000\n"],
        lambda t: f"{math.factorial(ints(t)[0]) % MOD}\n",
        cpp_main(
            "    int n; cin >> n; long long f = 1; for (int i = 2; i <= n; i++) f = f * i % 1000000007; cout << f << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(); long f = 1; for (int i = 2; i <= n; i++) f = f * i % 1000000007; System.out.println(f);\n"
        ),
        ("i <= n", "i < n"),
    )
)
add(
    Problem(
        "power_mod",
        lambda r: (
            ["2 10 1000\n", "3 0 7\n", "123456789 987654321 1000000007\n"]
            + [f"{r.randint(1, 10**9)} {r.randint(0, 10**18)} {r.randint(2, 10**9)}\n" for _ in range(3)]
        ),
        lambda t: (lambda a, b, m: f"{pow(a, b, m)}\n")(*ints(t)),
        cpp_main(
            "    long long a, b, m; cin >> a >> b >> m; long long r = 1 % m; a %= m; while (b > 0) { if (b & 1) r = r * a % m; a = a * a % m; b >>= 1; } cout << r << endl;\n"
        ),
        java_main(
            "        long a = in.nextLong(), b = in.nextLong(), m = in.nextLong(); long r = 1 % m; a %= m; while (b > 0) { if ((b & 1) == 1) r = r * a % m; a = a * a % m; b >>= 1; } System.out.println(r);\n"
        ),
        ("a = a * a % m;", "a = a * 2 % m;"),
    )
)
add(
    Problem(
        "is_prime",
        lambda r: ["1\n", "2\n", "97\n", "1000000007\n", "1000000008\n", "49\n"],
        lambda t: "YES\n" if _prime(ints(t)[0]) else "NO\n",
        cpp_main(
            '    long long n; cin >> n; bool p = n >= 2; for (long long d = 2; d * d <= n; d++) if (n % d == 0) p = false; cout << (p ? "YES" : "NO") << endl;\n'
        ),
        java_main(
            '        long n = in.nextLong(); boolean p = n >= 2; for (long d = 2; d * d <= n; d++) if (n % d == 0) p = false; System.out.println(p ? "YES" : "NO");\n'
        ),
        ("d * d <= n", "d * d < n"),
    )
)


def _prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


add(
    Problem(
        "count_primes",
        lambda r: ["1\n", "2\n", "10\n", "100\n", "1000000\n"],
        lambda t: f"{sum(_sieve(ints(t)[0]))}\n",
        cpp_main(
            "    int n; cin >> n; vector<bool> s(n + 1, true); int c = 0; for (int i = 2; i <= n; i++) if (s[i]) { c++; for (long long j = 1LL * i * i; j <= n; j += i) s[j] = false; } cout << c << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(); boolean[] s = new boolean[n + 1]; int c = 0; for (int i = 2; i <= n; i++) if (!s[i]) { c++; for (long j = 1L * i * i; j <= n; j += i) s[(int) j] = true; } System.out.println(c);\n"
        ),
        ("for (int i = 2; i <= n; i++)", "for (int i = 2; i < n; i++)"),
    )
)


def _sieve(n: int) -> list[bool]:
    flags = [False, False] + [True] * max(0, n - 1)
    for i in range(2, math.isqrt(n) + 1):
        if flags[i]:
            flags[i * i :: i] = [False] * len(flags[i * i :: i])
    return flags[: n + 1]


add(
    Problem(
        "digit_sum",
        lambda r: ["0\n", "9\n", "123456789012345678\n", f"{r.randint(1, 10**17)}\n"],
        lambda t: f"{sum(map(int, t.strip()))}\n",
        cpp_main("    string s; cin >> s; int t = 0; for (char c : s) t += c - '0'; cout << t << endl;\n"),
        java_main(
            "        String s = in.next(); int t = 0; for (char c : s.toCharArray()) t += c - '0'; System.out.println(t);\n"
        ),
        ("t += c - '0'", "t += c - '1'"),
    )
)
add(
    Problem(
        "binary",
        lambda r: ["0\n", "1\n", "10\n", "1023\n", f"{r.randint(2, 10**18)}\n"],
        lambda t: f"{bin(ints(t)[0])[2:]}\n",
        cpp_main(
            "    long long n; cin >> n; string s; if (n == 0) s = \"0\"; while (n > 0) { s += char('0' + n % 2); n /= 2; } reverse(s.begin(), s.end()); cout << s << endl;\n"
        ),
        java_main("        long n = in.nextLong(); System.out.println(Long.toBinaryString(n));\n"),
        {"cpp": ("n /= 2;", "n /= 3;"), "java": ("Long.toBinaryString(n)", "Long.toBinaryString(n / 2)")},
    )
)
add(
    Problem(
        "collatz_steps",
        lambda r: ["1\n", "6\n", "27\n", "97\n", f"{r.randint(2, 10**6)}\n"],
        lambda t: f"{_collatz(ints(t)[0])}\n",
        cpp_main(
            "    long long n; cin >> n; int s = 0; while (n != 1) { n = n % 2 ? 3 * n + 1 : n / 2; s++; } cout << s << endl;\n"
        ),
        java_main(
            "        long n = in.nextLong(); int s = 0; while (n != 1) { n = n % 2 == 1 ? 3 * n + 1 : n / 2; s++; } System.out.println(s);\n"
        ),
        ("3 * n + 1", "3 * n - 1"),
    )
)


def _collatz(n: int) -> int:
    steps = 0
    while n != 1:
        n = 3 * n + 1 if n % 2 else n // 2
        steps += 1
    return steps


add(
    Problem(
        "leap_year",
        lambda r: ["2000\n", "1900\n", "1800\n", "2024\n", "2023\n", "2400\n"],
        lambda t: (
            "YES\n" if (lambda y: y % 400 == 0 or (y % 4 == 0 and y % 100 != 0))(ints(t)[0]) else "NO\n"
        ),
        cpp_main(
            '    int y; cin >> y; bool l = y % 400 == 0 || (y % 4 == 0 && y % 100 != 0); cout << (l ? "YES" : "NO") << endl;\n'
        ),
        java_main(
            '        int y = in.nextInt(); boolean l = y % 400 == 0 || (y % 4 == 0 && y % 100 != 0); System.out.println(l ? "YES" : "NO");\n'
        ),
        ("y % 400 == 0 ||", "y % 200 == 0 ||"),
    )
)
add(
    Problem(
        "triangle",
        lambda r: ["3 4 5\n", "1 2 3\n", "1 1 1\n", "10 1 1\n", "1000000000 1000000000 1000000000\n"],
        lambda t: (lambda a, b, c: "YES\n" if a + b > c and a + c > b and b + c > a else "NO\n")(*ints(t)),
        cpp_main(
            '    long long a, b, c; cin >> a >> b >> c; cout << (a + b > c && a + c > b && b + c > a ? "YES" : "NO") << endl;\n'
        ),
        java_main(
            '        long a = in.nextLong(), b = in.nextLong(), c = in.nextLong(); System.out.println(a + b > c && a + c > b && b + c > a ? "YES" : "NO");\n'
        ),
        ("a + b > c", "a + b >= c"),
    )
)
add(
    Problem(
        "fizzbuzz",
        lambda r: ["1\n", "15\n", "31\n"],
        lambda t: "".join(
            ("FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i)) + "\n"
            for i in range(1, ints(t)[0] + 1)
        ),
        cpp_main(
            '    int n; cin >> n; for (int i = 1; i <= n; i++) { if (i % 15 == 0) cout << "FizzBuzz\\n"; else if (i % 3 == 0) cout << "Fizz\\n"; else if (i % 5 == 0) cout << "Buzz\\n"; else cout << i << "\\n"; }\n'
        ),
        java_main(
            '        int n = in.nextInt(); StringBuilder o = new StringBuilder(); for (int i = 1; i <= n; i++) { if (i % 15 == 0) o.append("FizzBuzz\\n"); else if (i % 3 == 0) o.append("Fizz\\n"); else if (i % 5 == 0) o.append("Buzz\\n"); else o.append(i).append("\\n"); } System.out.print(o);\n'
        ),
        ("i % 15 == 0", "i % 10 == 0"),
    )
)

# --- arrays ------------------------------------------------------------------------------------------------

add(
    Problem(
        "reverse_array",
        lambda r: array_inputs(r),
        lambda t: " ".join(map(str, reversed(ints(t)[1:]))) + "\n",
        cpp_main(
            read_array_cpp() + "    for (int i = n - 1; i >= 0; i--) cout << a[i] << (i ? ' ' : '\\n');\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + '        StringBuilder o = new StringBuilder(); for (int i = n - 1; i >= 0; i--) o.append(a[i]).append(i > 0 ? " " : ""); System.out.println(o);\n'
        ),
        ("i >= 0", "i > 0"),
    )
)
add(
    Problem(
        "sort_ascending",
        lambda r: array_inputs(r),
        lambda t: " ".join(map(str, sorted(ints(t)[1:]))) + "\n",
        cpp_main(
            read_array_cpp()
            + "    sort(a.begin(), a.end()); for (int i = 0; i < n; i++) cout << a[i] << (i + 1 < n ? ' ' : '\\n');\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + '        Arrays.sort(a); StringBuilder o = new StringBuilder(); for (int i = 0; i < n; i++) o.append(a[i]).append(i + 1 < n ? " " : ""); System.out.println(o);\n'
        ),
        ("for (int i = 0; i < n; i++)", "for (int i = 0; i < n - 1 + (n == 1); i++)"),
    )
)
add(
    Problem(
        "sort_descending",
        lambda r: array_inputs(r),
        lambda t: " ".join(map(str, sorted(ints(t)[1:], reverse=True))) + "\n",
        cpp_main(
            read_array_cpp()
            + "    sort(a.begin(), a.end()); for (int i = n - 1; i >= 0; i--) cout << a[i] << (i ? ' ' : '\\n');\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + '        Arrays.sort(a); StringBuilder o = new StringBuilder(); for (int i = n - 1; i >= 0; i--) o.append(a[i]).append(i > 0 ? " " : ""); System.out.println(o);\n'
        ),
        ("for (int i = n - 1; i >= 0; i--)", "for (int i = n - 1; i >= 0; i -= 1 + (n > 2))"),
    )
)
add(
    Problem(
        "distinct_count",
        lambda r: array_inputs(r, 0, 5) + ["1\n7\n"],
        lambda t: f"{len(set(ints(t)[1:]))}\n",
        cpp_main(read_array_cpp() + "    set<long long> s(a.begin(), a.end()); cout << s.size() << endl;\n"),
        java_main(
            READ_ARRAY_JAVA
            + "        Set<Long> s = new HashSet<>(); for (long x : a) s.add(x); System.out.println(s.size());\n"
        ),
        ("size()", "size() + (n > 4)"),
    )
)
add(
    Problem(
        "range_width",
        lambda r: array_inputs(r),
        lambda t: f"{max(ints(t)[1:]) - min(ints(t)[1:])}\n",
        cpp_main(
            read_array_cpp()
            + "    cout << *max_element(a.begin(), a.end()) - *min_element(a.begin(), a.end()) << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long hi = a[0], lo = a[0]; for (long x : a) { hi = Math.max(hi, x); lo = Math.min(lo, x); } System.out.println(hi - lo);\n"
        ),
        ("-", "+"),
    )
)
add(
    Problem(
        "prefix_sums",
        lambda r: [_prefix_input(r, n, q) for n, q in [(1, 1), (5, 3), (50, 20), (200, 50)]],
        lambda t: _prefix_answer(t),
        cpp_main(
            "    int n, q; cin >> n >> q; vector<long long> p(n + 1); for (int i = 1; i <= n; i++) { cin >> p[i]; p[i] += p[i - 1]; } while (q--) { int l, r; cin >> l >> r; cout << p[r] - p[l - 1] << '\\n'; }\n"
        ),
        java_main(
            "        int n = in.nextInt(), q = in.nextInt(); long[] p = new long[n + 1]; for (int i = 1; i <= n; i++) p[i] = p[i - 1] + in.nextLong(); StringBuilder o = new StringBuilder(); while (q-- > 0) { int l = in.nextInt(), r = in.nextInt(); o.append(p[r] - p[l - 1]).append('\\n'); } System.out.print(o);\n"
        ),
        ("p[r] - p[l - 1]", "p[r] - p[l]"),
    )
)


def _prefix_input(rng: random.Random, n: int, q: int) -> str:
    queries = []
    for _ in range(q):
        left = rng.randint(1, n)
        queries.append(f"{left} {rng.randint(left, n)}")
    return f"{n} {q}\n{' '.join(map(str, numbers(rng, n)))}\n" + "\n".join(queries) + "\n"


def _prefix_answer(text: str) -> str:
    values = ints(text)
    n, q = values[0], values[1]
    array, rest = values[2 : 2 + n], values[2 + n :]
    return "".join(f"{sum(array[rest[2 * i] - 1 : rest[2 * i + 1]])}\n" for i in range(q))


add(
    Problem(
        "max_subarray",
        lambda r: array_inputs(r) + ["3\n-3 -1 -2\n"],
        lambda t: f"{_kadane(ints(t)[1:])}\n",
        cpp_main(
            read_array_cpp()
            + "    long long best = a[0], cur = 0; for (auto x : a) { cur = max(x, cur + x); best = max(best, cur); } cout << best << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long best = a[0], cur = 0; for (long x : a) { cur = Math.max(x, cur + x); best = Math.max(best, cur); } System.out.println(best);\n"
        ),
        ("max(x, cur + x)", "max(x, cur + x + 1)"),
    )
)


def _kadane(values: list[int]) -> int:
    best, current = values[0], 0
    for value in values:
        current = max(value, current + value)
        best = max(best, current)
    return best


add(
    Problem(
        "inversions",
        lambda r: array_inputs(r, 0, 20, sizes=(1, 3, 10, 100, 300)),
        lambda t: (
            f"{(lambda a: sum(1 for i in range(len(a)) for j in range(i + 1, len(a)) if a[i] > a[j]))(ints(t)[1:])}\n"
        ),
        cpp_main(
            read_array_cpp()
            + "    long long c = 0; for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (a[i] > a[j]) c++; cout << c << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long c = 0; for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (a[i] > a[j]) c++; System.out.println(c);\n"
        ),
        ("if (a[i] > a[j])", "if (a[i] >= a[j])"),
    )
)
add(
    Problem(
        "rotate_right",
        lambda r: [
            f"{n} {k}\n{' '.join(map(str, numbers(r, n)))}\n" for n, k in [(1, 5), (5, 2), (6, 6), (10, 13)]
        ],
        lambda t: (
            lambda v: (
                " ".join(
                    map(str, v[2:][-(v[1] % v[0]) :] + v[2:][: -(v[1] % v[0])] if v[1] % v[0] else v[2:])
                )
                + "\n"
            )
        )(ints(t)),
        cpp_main(
            "    int n; long long k; cin >> n >> k; vector<long long> a(n); for (auto &x : a) cin >> x; k %= n; for (int i = 0; i < n; i++) cout << a[(i - k + n) % n] << (i + 1 < n ? ' ' : '\\n');\n"
        ),
        java_main(
            '        int n = in.nextInt(); long k = in.nextLong(); long[] a = new long[n]; for (int i = 0; i < n; i++) a[i] = in.nextLong(); k %= n; StringBuilder o = new StringBuilder(); for (int i = 0; i < n; i++) o.append(a[(int) ((i - k + n) % n)]).append(i + 1 < n ? " " : ""); System.out.println(o);\n'
        ),
        ("(i - k + n) % n", "(i + k) % n"),
    )
)
add(
    Problem(
        "prefix_maxima",
        lambda r: array_inputs(r),
        lambda t: " ".join(str(max(ints(t)[1 : i + 2])) for i in range(ints(t)[0])) + "\n",
        cpp_main(
            read_array_cpp()
            + "    long long m = LLONG_MIN; for (int i = 0; i < n; i++) { m = max(m, a[i]); cout << m << (i + 1 < n ? ' ' : '\\n'); }\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + '        long m = Long.MIN_VALUE; StringBuilder o = new StringBuilder(); for (int i = 0; i < n; i++) { m = Math.max(m, a[i]); o.append(m).append(i + 1 < n ? " " : ""); } System.out.println(o);\n'
        ),
        ("max(m, a[i])", "min(m, a[i])"),
    )
)
add(
    Problem(
        "most_frequent",
        lambda r: array_inputs(r, 0, 4) + ["4\n3 3 1 1\n"],
        lambda t: f"{min(Counter(ints(t)[1:]).items(), key=lambda kv: (-kv[1], kv[0]))[0]}\n",
        cpp_main(
            read_array_cpp()
            + "    map<long long, int> c; for (auto x : a) c[x]++; long long best = 0; int most = 0; for (auto [v, k] : c) if (k > most) { most = k; best = v; } cout << best << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        TreeMap<Long, Integer> c = new TreeMap<>(); for (long x : a) c.merge(x, 1, Integer::sum); long best = 0; int most = 0; for (Map.Entry<Long, Integer> e : c.entrySet()) if (e.getValue() > most) { most = e.getValue(); best = e.getKey(); } System.out.println(best);\n"
        ),
        ("> most)", ">= most)"),
    )
)
add(
    Problem(
        "two_sum_exists",
        lambda r: (
            [
                f"{n} {k}\n{' '.join(map(str, numbers(r, n, 0, 20)))}\n"
                for n, k in [(1, 2), (4, 10), (10, 39), (30, 7), (2, 4)]
            ]
            + ["2 4\n2 2\n", "1 4\n2\n"]
        ),
        lambda t: (
            lambda v: (
                "YES\n"
                if any(v[2 + i] + v[2 + j] == v[1] for i in range(v[0]) for j in range(i + 1, v[0]))
                else "NO\n"
            )
        )(ints(t)),
        cpp_main(
            '    int n; long long k; cin >> n >> k; vector<long long> a(n); for (auto &x : a) cin >> x; bool f = false; for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (a[i] + a[j] == k) f = true; cout << (f ? "YES" : "NO") << endl;\n'
        ),
        java_main(
            '        int n = in.nextInt(); long k = in.nextLong(); long[] a = new long[n]; for (int i = 0; i < n; i++) a[i] = in.nextLong(); boolean f = false; for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (a[i] + a[j] == k) f = true; System.out.println(f ? "YES" : "NO");\n'
        ),
        ("int j = i + 1", "int j = i"),
    )
)
add(
    Problem(
        "pairs_with_sum",
        lambda r: [
            f"{n} {k}\n{' '.join(map(str, numbers(r, n, 0, 10)))}\n"
            for n, k in [(1, 2), (5, 10), (50, 9), (300, 10)]
        ],
        lambda t: (
            lambda v: (
                f"{sum(1 for i in range(v[0]) for j in range(i + 1, v[0]) if v[2 + i] + v[2 + j] == v[1])}\n"
            )
        )(ints(t)),
        cpp_main(
            "    int n; long long k; cin >> n >> k; vector<long long> a(n); for (auto &x : a) cin >> x; long long c = 0; for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (a[i] + a[j] == k) c++; cout << c << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(); long k = in.nextLong(); long[] a = new long[n]; for (int i = 0; i < n; i++) a[i] = in.nextLong(); long c = 0; for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) if (a[i] + a[j] == k) c++; System.out.println(c);\n"
        ),
        ("int j = i + 1", "int j = i"),
    )
)
add(
    Problem(
        "lis_length",
        lambda r: array_inputs(r, 0, 50, sizes=(1, 5, 20, 200, 1000)),
        lambda t: f"{_lis(ints(t)[1:])}\n",
        cpp_main(
            read_array_cpp()
            + "    vector<long long> d; for (auto x : a) { auto it = lower_bound(d.begin(), d.end(), x); if (it == d.end()) d.push_back(x); else *it = x; } cout << d.size() << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        long[] d = new long[n]; int len = 0; for (long x : a) { int lo = 0, hi = len; while (lo < hi) { int mid = (lo + hi) / 2; if (d[mid] < x) lo = mid + 1; else hi = mid; } d[lo] = x; if (lo == len) len++; } System.out.println(len);\n"
        ),
        {
            "cpp": ("d.size()", "d.size() - (n > 4)"),
            "java": ("System.out.println(len)", "System.out.println(len - (n > 4 ? 1 : 0))"),
        },
    )
)


def _lis(values: list[int]) -> int:
    import bisect

    tails: list[int] = []
    for value in values:
        index = bisect.bisect_left(tails, value)
        tails[index : index + 1] = [value]
    return len(tails)


# --- strings -----------------------------------------------------------------------------------------------

add(
    Problem(
        "palindrome",
        lambda r: ["abba\n", "abc\n", "abca\n", "a\n", "racecar\n", "ab\n"] + [w + "\n" for w in words(r, 2)],
        lambda t: "YES\n" if t.strip() == t.strip()[::-1] else "NO\n",
        cpp_main(
            '    string s; cin >> s; string r(s.rbegin(), s.rend()); cout << (s == r ? "YES" : "NO") << endl;\n'
        ),
        java_main(
            '        String s = in.next(); String r = new StringBuilder(s).reverse().toString(); System.out.println(s.equals(r) ? "YES" : "NO");\n'
        ),
        {"cpp": ("s == r", "s.front() == r.front()"), "java": ("s.equals(r)", "s.charAt(0) == r.charAt(0)")},
    )
)
add(
    Problem(
        "reverse_string",
        lambda r: [w + "\n" for w in words(r, 4)] + ["x\n"],
        lambda t: t.strip()[::-1] + "\n",
        cpp_main("    string s; cin >> s; reverse(s.begin(), s.end()); cout << s << endl;\n"),
        java_main("        String s = in.next(); System.out.println(new StringBuilder(s).reverse());\n"),
        {
            "cpp": ("reverse(s.begin(), s.end())", "reverse(s.begin() + 1, s.end())"),
            "java": ("new StringBuilder(s).reverse()", "new StringBuilder(s.substring(1)).reverse()"),
        },
    )
)
add(
    Problem(
        "count_vowels",
        lambda r: [w + "\n" for w in words(r, 5)],
        lambda t: f"{sum(c in 'aeiou' for c in t.strip())}\n",
        cpp_main(
            '    string s; cin >> s; int c = 0; for (char ch : s) if (string("aeiou").find(ch) != string::npos) c++; cout << c << endl;\n'
        ),
        java_main(
            '        String s = in.next(); int c = 0; for (char ch : s.toCharArray()) if ("aeiou".indexOf(ch) >= 0) c++; System.out.println(c);\n'
        ),
        ("aeiou", "aeio"),
    )
)
add(
    Problem(
        "uppercase",
        lambda r: [" ".join(words(r, 3)) + "\n" for _ in range(4)],
        lambda t: t.rstrip("\n").upper() + "\n",
        cpp_main("    string s; getline(cin, s); for (auto &c : s) c = toupper(c); cout << s << endl;\n"),
        java_main("        String s = in.nextLine(); System.out.println(s.toUpperCase());\n"),
        {
            "cpp": ("c = toupper(c)", "c = (&c == &s[0]) ? c : toupper(c)"),
            "java": ("s.toUpperCase()", "s.charAt(0) + s.substring(1).toUpperCase()"),
        },
    )
)
add(
    Problem(
        "word_count",
        lambda r: (
            ["one\n", "  two words  \n"] + [" ".join(words(r, r.randint(1, 9))) + "\n" for _ in range(3)]
        ),
        lambda t: f"{len(t.split())}\n",
        cpp_main("    string w; int c = 0; while (cin >> w) c++; cout << c << endl;\n"),
        java_main("        int c = 0; while (in.hasNext()) { in.next(); c++; } System.out.println(c);\n"),
        ("c++;", "c += 2;"),
    )
)
add(
    Problem(
        "balanced_brackets",
        lambda r: ["()\n", "(()\n", "([]{})\n", "([)]\n", ")(\n", "((()))[]\n"],
        lambda t: "YES\n" if _balanced(t.strip()) else "NO\n",
        cpp_main(
            "    string s; cin >> s; string st; bool ok = true; for (char c : s) { if (c == '(' || c == '[' || c == '{') st += c; else { char o = c == ')' ? '(' : c == ']' ? '[' : '{'; if (st.empty() || st.back() != o) { ok = false; break; } st.pop_back(); } } cout << (ok && st.empty() ? \"YES\" : \"NO\") << endl;\n"
        ),
        java_main(
            "        String s = in.next(); Deque<Character> st = new ArrayDeque<>(); boolean ok = true; for (char c : s.toCharArray()) { if (c == '(' || c == '[' || c == '{') st.push(c); else { char o = c == ')' ? '(' : c == ']' ? '[' : '{'; if (st.isEmpty() || st.peek() != o) { ok = false; break; } st.pop(); } } System.out.println(ok && st.isEmpty() ? \"YES\" : \"NO\");\n"
        ),
        {"cpp": ("ok && st.empty()", "ok"), "java": ("ok && st.isEmpty()", "ok")},
    )
)


def _balanced(text: str) -> bool:
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for char in text:
        if char in "([{":
            stack.append(char)
        elif not stack or stack.pop() != pairs[char]:
            return False
    return not stack


add(
    Problem(
        "lcs_length",
        lambda r: [
            f"{a}\n{b}\n"
            for a, b in [("abcde", "ace"), ("abc", "def"), ("a", "a")]
            + [tuple(words(r, 2)) for _ in range(3)]
        ],
        lambda t: f"{_lcs(*t.split())}\n",
        cpp_main(
            "    string a, b; cin >> a >> b; int n = a.size(), m = b.size(); vector<vector<int>> d(n + 1, vector<int>(m + 1)); for (int i = 1; i <= n; i++) for (int j = 1; j <= m; j++) d[i][j] = a[i - 1] == b[j - 1] ? d[i - 1][j - 1] + 1 : max(d[i - 1][j], d[i][j - 1]); cout << d[n][m] << endl;\n"
        ),
        java_main(
            "        String a = in.next(), b = in.next(); int n = a.length(), m = b.length(); int[][] d = new int[n + 1][m + 1]; for (int i = 1; i <= n; i++) for (int j = 1; j <= m; j++) d[i][j] = a.charAt(i - 1) == b.charAt(j - 1) ? d[i - 1][j - 1] + 1 : Math.max(d[i - 1][j], d[i][j - 1]); System.out.println(d[n][m]);\n"
        ),
        {
            "cpp": ("max(d[i - 1][j], d[i][j - 1])", "d[i][j - 1]"),
            "java": ("Math.max(d[i - 1][j], d[i][j - 1])", "d[i][j - 1]"),
        },
    )
)


def _lcs(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        previous, row = row, [0]
        for j, y in enumerate(b, 1):
            row.append(previous[j - 1] + 1 if x == y else max(previous[j], row[j - 1]))
    return row[-1]


add(
    Problem(
        "edit_distance",
        lambda r: [
            f"{a}\n{b}\n"
            for a, b in [("kitten", "sitting"), ("a", "a"), ("abc", "yabd")]
            + [tuple(words(r, 2)) for _ in range(3)]
        ],
        lambda t: f"{_edit(*t.split())}\n",
        cpp_main(
            "    string a, b; cin >> a >> b; int n = a.size(), m = b.size(); vector<vector<int>> d(n + 1, vector<int>(m + 1)); for (int i = 0; i <= n; i++) d[i][0] = i; for (int j = 0; j <= m; j++) d[0][j] = j; for (int i = 1; i <= n; i++) for (int j = 1; j <= m; j++) d[i][j] = min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])}); cout << d[n][m] << endl;\n"
        ),
        java_main(
            "        String a = in.next(), b = in.next(); int n = a.length(), m = b.length(); int[][] d = new int[n + 1][m + 1]; for (int i = 0; i <= n; i++) d[i][0] = i; for (int j = 0; j <= m; j++) d[0][j] = j; for (int i = 1; i <= n; i++) for (int j = 1; j <= m; j++) d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + (a.charAt(i - 1) != b.charAt(j - 1) ? 1 : 0)); System.out.println(d[n][m]);\n"
        ),
        ("d[i][0] = i;", "d[i][0] = 0;"),
    )
)


def _edit(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row = row, [i]
        for j, y in enumerate(b, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y)))
    return row[-1]


# --- dynamic programming and matrices ------------------------------------------------------------------

add(
    Problem(
        "grid_paths",
        lambda r: ["1 1\n", "2 2\n", "3 7\n", "500 500\n", f"{r.randint(1, 300)} {r.randint(1, 300)}\n"],
        lambda t: (lambda n, m: f"{math.comb(n + m - 2, n - 1) % MOD}\n")(*ints(t)),
        cpp_main(
            "    int n, m; cin >> n >> m; vector<vector<long long>> d(n, vector<long long>(m, 1)); for (int i = 1; i < n; i++) for (int j = 1; j < m; j++) d[i][j] = (d[i - 1][j] + d[i][j - 1]) % 1000000007; cout << d[n - 1][m - 1] << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(), m = in.nextInt(); long[][] d = new long[n][m]; for (long[] row : d) Arrays.fill(row, 1); for (int i = 1; i < n; i++) for (int j = 1; j < m; j++) d[i][j] = (d[i - 1][j] + d[i][j - 1]) % 1000000007; System.out.println(d[n - 1][m - 1]);\n"
        ),
        ("(d[i - 1][j] + d[i][j - 1])", "(d[i - 1][j] + d[i][j - 1] + (i == j))"),
    )
)
add(
    Problem(
        "knapsack",
        lambda r: [_knapsack_input(r, n, w) for n, w in [(1, 5), (3, 10), (10, 50), (40, 200)]],
        lambda t: f"{_knapsack(ints(t))}\n",
        cpp_main(
            "    int n, W; cin >> n >> W; vector<long long> d(W + 1); for (int i = 0; i < n; i++) { int w; long long v; cin >> w >> v; for (int c = W; c >= w; c--) d[c] = max(d[c], d[c - w] + v); } cout << d[W] << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(), W = in.nextInt(); long[] d = new long[W + 1]; for (int i = 0; i < n; i++) { int w = in.nextInt(); long v = in.nextLong(); for (int c = W; c >= w; c--) d[c] = Math.max(d[c], d[c - w] + v); } System.out.println(d[W]);\n"
        ),
        ("for (int c = W; c >= w; c--)", "for (int c = w; c <= W; c++)"),
    )
)


def _knapsack_input(rng: random.Random, n: int, capacity: int) -> str:
    items = [f"{rng.randint(1, capacity)} {rng.randint(1, 100)}" for _ in range(n)]
    return f"{n} {capacity}\n" + "\n".join(items) + "\n"


def _knapsack(values: list[int]) -> int:
    n, capacity = values[0], values[1]
    best = [0] * (capacity + 1)
    for i in range(n):
        weight, value = values[2 + 2 * i], values[3 + 2 * i]
        for c in range(capacity, weight - 1, -1):
            best[c] = max(best[c], best[c - weight] + value)
    return best[capacity]


add(
    Problem(
        "transpose",
        lambda r: [_matrix_input(r, n, m) for n, m in [(1, 1), (2, 3), (4, 2), (5, 5)]],
        lambda t: _transpose(ints(t)),
        cpp_main(
            "    int n, m; cin >> n >> m; vector<vector<long long>> a(n, vector<long long>(m)); for (auto &row : a) for (auto &x : row) cin >> x; for (int j = 0; j < m; j++) for (int i = 0; i < n; i++) cout << a[i][j] << (i + 1 < n ? ' ' : '\\n');\n"
        ),
        java_main(
            '        int n = in.nextInt(), m = in.nextInt(); long[][] a = new long[n][m]; for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) a[i][j] = in.nextLong(); StringBuilder o = new StringBuilder(); for (int j = 0; j < m; j++) for (int i = 0; i < n; i++) o.append(a[i][j]).append(i + 1 < n ? " " : "\\n"); System.out.print(o);\n'
        ),
        {
            "cpp": ("cout << a[i][j] <<", "cout << a[i][(j + i) % m] <<"),
            "java": ("o.append(a[i][j])", "o.append(a[i][(j + i) % m])"),
        },
    )
)


def _matrix_input(rng: random.Random, n: int, m: int) -> str:
    return f"{n} {m}\n" + "\n".join(" ".join(map(str, numbers(rng, m))) for _ in range(n)) + "\n"


def _transpose(values: list[int]) -> str:
    n, m, cells = values[0], values[1], values[2:]
    return "".join(" ".join(str(cells[i * m + j]) for i in range(n)) + "\n" for j in range(m))


add(
    Problem(
        "diagonal_sum",
        lambda r: [f"{n}\n" + _matrix_input(r, n, n).split("\n", 1)[1] for n in (1, 2, 3, 6)],
        lambda t: (lambda v: f"{sum(v[1 + i * v[0] + i] for i in range(v[0]))}\n")(ints(t)),
        cpp_main(
            "    int n; cin >> n; long long s = 0; for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) { long long x; cin >> x; if (i == j) s += x; } cout << s << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(); long s = 0; for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) { long x = in.nextLong(); if (i == j) s += x; } System.out.println(s);\n"
        ),
        ("if (i == j)", "if (i + j == n - 1)"),
    )
)

# --- graphs ------------------------------------------------------------------------------------------------


def _graph_input(rng: random.Random, n: int, m: int, weighted: bool = False) -> str:
    edges = []
    for _ in range(m):
        u, v = rng.randint(1, n), rng.randint(1, n)
        edges.append(f"{u} {v} {rng.randint(1, 20)}" if weighted else f"{u} {v}")
    return f"{n} {m}\n" + "\n".join(edges) + ("\n" if edges else "")


def _edges(values: list[int], weighted: bool) -> tuple[int, list[tuple[int, ...]]]:
    n, m, step = values[0], values[1], 3 if weighted else 2
    return n, [tuple(values[2 + step * i : 2 + step * (i + 1)]) for i in range(m)]


def _bfs(text: str) -> str:
    n, edges = _edges(ints(text), False)
    graph: dict[int, list[int]] = {i: [] for i in range(1, n + 1)}
    for u, v in edges:
        graph[u].append(v)
        graph[v].append(u)
    distance = {1: 0}
    queue = deque([1])
    while queue:
        node = queue.popleft()
        for nxt in graph[node]:
            if nxt not in distance:
                distance[nxt] = distance[node] + 1
                queue.append(nxt)
    return f"{distance.get(n, -1)}\n"


add(
    Problem(
        "bfs_distance",
        lambda r: (
            ["1 0\n", "3 1\n1 2\n", "4 3\n1 2\n2 3\n3 4\n"]
            + [_graph_input(r, n, m) for n, m in [(10, 12), (50, 60), (200, 180)]]
        ),
        _bfs,
        cpp_main(
            "    int n, m; cin >> n >> m; vector<vector<int>> g(n + 1); for (int i = 0; i < m; i++) { int u, v; cin >> u >> v; g[u].push_back(v); g[v].push_back(u); } vector<int> d(n + 1, -1); d[1] = 0; queue<int> q; q.push(1); while (!q.empty()) { int x = q.front(); q.pop(); for (int y : g[x]) if (d[y] < 0) { d[y] = d[x] + 1; q.push(y); } } cout << d[n] << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(), m = in.nextInt(); List<List<Integer>> g = new ArrayList<>(); for (int i = 0; i <= n; i++) g.add(new ArrayList<>()); for (int i = 0; i < m; i++) { int u = in.nextInt(), v = in.nextInt(); g.get(u).add(v); g.get(v).add(u); } int[] d = new int[n + 1]; Arrays.fill(d, -1); d[1] = 0; ArrayDeque<Integer> q = new ArrayDeque<>(); q.add(1); while (!q.isEmpty()) { int x = q.poll(); for (int y : g.get(x)) if (d[y] < 0) { d[y] = d[x] + 1; q.add(y); } } System.out.println(d[n]);\n"
        ),
        {"cpp": ("g[v].push_back(u);", ""), "java": ("g.get(v).add(u);", "")},
    )
)


def _components(text: str) -> str:
    n, edges = _edges(ints(text), False)
    parent = list(range(n + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        parent[find(u)] = find(v)
    return f"{len({find(i) for i in range(1, n + 1)})}\n"


add(
    Problem(
        "components",
        lambda r: (
            ["1 0\n", "5 2\n1 2\n4 5\n"]
            + [_graph_input(r, n, m) for n, m in [(10, 5), (100, 60), (1000, 900)]]
        ),
        _components,
        cpp_main(
            "    int n, m; cin >> n >> m; vector<int> p(n + 1); iota(p.begin(), p.end(), 0); function<int(int)> f = [&](int x) { return p[x] == x ? x : p[x] = f(p[x]); }; int c = n; for (int i = 0; i < m; i++) { int u, v; cin >> u >> v; u = f(u); v = f(v); if (u != v) { p[u] = v; c--; } } cout << c << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(), m = in.nextInt(); p = new int[n + 1]; for (int i = 0; i <= n; i++) p[i] = i; int c = n; for (int i = 0; i < m; i++) { int u = f(in.nextInt()), v = f(in.nextInt()); if (u != v) { p[u] = v; c--; } } System.out.println(c);\n    }\n\n    static int[] p;\n\n    static int f(int x) {\n        while (p[x] != x) x = p[x] = p[p[x]];\n        return x;\n"
        ),
        ("if (u != v) { p[u] = v; c--; }", "{ p[u] = v; c--; }"),
    )
)


def _dijkstra(text: str) -> str:
    n, edges = _edges(ints(text), True)
    graph: dict[int, list[tuple[int, int]]] = {i: [] for i in range(1, n + 1)}
    for u, v, w in edges:
        graph[u].append((v, w))
        graph[v].append((u, w))
    best, heap = {1: 0}, [(0, 1)]
    while heap:
        d, node = heapq.heappop(heap)
        if d > best.get(node, math.inf):
            continue
        for nxt, w in graph[node]:
            if d + w < best.get(nxt, math.inf):
                best[nxt] = d + w
                heapq.heappush(heap, (d + w, nxt))
    return f"{best.get(n, -1)}\n"


add(
    Problem(
        "dijkstra",
        lambda r: (
            ["1 0\n", "3 3\n1 2 5\n2 3 5\n1 3 20\n"]
            + [_graph_input(r, n, m, True) for n, m in [(10, 20), (100, 300), (1000, 3000)]]
        ),
        _dijkstra,
        cpp_main(
            "    int n, m; cin >> n >> m; vector<vector<pair<int, long long>>> g(n + 1); for (int i = 0; i < m; i++) { int u, v; long long w; cin >> u >> v >> w; g[u].push_back({v, w}); g[v].push_back({u, w}); } vector<long long> d(n + 1, LLONG_MAX); priority_queue<pair<long long, int>, vector<pair<long long, int>>, greater<>> q; d[1] = 0; q.push({0, 1}); while (!q.empty()) { auto [dist, x] = q.top(); q.pop(); if (dist > d[x]) continue; for (auto [y, w] : g[x]) if (dist + w < d[y]) { d[y] = dist + w; q.push({d[y], y}); } } cout << (d[n] == LLONG_MAX ? -1 : d[n]) << endl;\n"
        ),
        java_main(
            "        int n = in.nextInt(), m = in.nextInt(); List<List<long[]>> g = new ArrayList<>(); for (int i = 0; i <= n; i++) g.add(new ArrayList<>()); for (int i = 0; i < m; i++) { int u = in.nextInt(), v = in.nextInt(); long w = in.nextLong(); g.get(u).add(new long[] {v, w}); g.get(v).add(new long[] {u, w}); } long[] d = new long[n + 1]; Arrays.fill(d, Long.MAX_VALUE); PriorityQueue<long[]> q = new PriorityQueue<>((x, y) -> Long.compare(x[0], y[0])); d[1] = 0; q.add(new long[] {0, 1}); while (!q.isEmpty()) { long[] top = q.poll(); int x = (int) top[1]; if (top[0] > d[x]) continue; for (long[] e : g.get(x)) { int y = (int) e[0]; if (top[0] + e[1] < d[y]) { d[y] = top[0] + e[1]; q.add(new long[] {d[y], y}); } } } System.out.println(d[n] == Long.MAX_VALUE ? -1 : d[n]);\n"
        ),
        {
            "cpp": ("if (dist + w < d[y])", "if (dist + 1 < d[y])"),
            "java": ("if (top[0] + e[1] < d[y])", "if (top[0] + 1 < d[y])"),
        },
    )
)

# --- several correct outputs: judged by a checker, or by tokens or a float tolerance ----------------------

add(
    Problem(
        "split_sum",
        lambda r: ["2\n", "3\n", "10\n", f"{r.randint(2, 10**9)}\n"],
        lambda t: f"1 {ints(t)[0] - 1}\n",
        cpp_main("    long long n; cin >> n; cout << n / 2 << ' ' << n - n / 2 << endl;\n"),
        java_main('        long n = in.nextLong(); System.out.println(n / 2 + " " + (n - n / 2));\n'),
        ("n - n / 2", "n - n / 2 + 1"),
        checker="def check(input, expected, output):\n    n = int(input)\n    a, b = map(int, output.split())\n    return a >= 1 and b >= 1 and a + b == n, f'{a} + {b} is not {n}'\n",
    )
)
add(
    Problem(
        "any_divisor",
        lambda r: ["4\n", "7\n", "12\n", "97\n", "1000000007\n", "999999999\n"],
        lambda t: (lambda n: f"{next((d for d in range(2, math.isqrt(n) + 1) if n % d == 0), -1)}\n")(
            ints(t)[0]
        ),
        cpp_main(
            "    long long n; cin >> n; long long d = -1; for (long long x = 2; x * x <= n; x++) if (n % x == 0) d = n / x; cout << d << endl;\n"
        ),
        java_main(
            "        long n = in.nextLong(); long d = -1; for (long x = 2; x * x <= n; x++) if (n % x == 0) d = n / x; System.out.println(d);\n"
        ),
        ("d = n / x", "d = n / x + 1"),
        checker="def check(input, expected, output):\n    n, d = int(input), int(output)\n    if d == -1:\n        return expected.strip() == '-1', 'n has a divisor'\n    return 1 < d < n and n % d == 0, f'{d} does not divide {n}'\n",
    )
)
add(
    Problem(
        "index_of_max",
        lambda r: ["3\n5 5 1\n", "1\n4\n", "4\n1 9 9 9\n"] + array_inputs(r, 0, 3, sizes=(6, 20)),
        lambda t: (lambda v: f"{v.index(max(v)) + 1}\n")(ints(t)[1:]),
        cpp_main(
            read_array_cpp()
            + "    int best = 0; for (int i = 0; i < n; i++) if (a[i] >= a[best]) best = i; cout << best + 1 << endl;\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + "        int best = 0; for (int i = 0; i < n; i++) if (a[i] >= a[best]) best = i; System.out.println(best + 1);\n"
        ),
        ("a[i] >= a[best]", "a[i] <= a[best]"),
        checker="def check(input, expected, output):\n    values = list(map(int, input.split()))[1:]\n    i = int(output)\n    return 1 <= i <= len(values) and values[i - 1] == max(values), f'{i} is not the index of a maximum'\n",
    )
)
add(
    Problem(
        "sort_by_abs",
        lambda r: ["4\n-3 3 1 -1\n", "1\n0\n"] + array_inputs(r, -5, 5, sizes=(8, 30)),
        lambda t: " ".join(map(str, sorted(ints(t)[1:], key=abs))) + "\n",
        cpp_main(
            read_array_cpp()
            + "    stable_sort(a.begin(), a.end(), [](long long x, long long y) { return llabs(x) < llabs(y) || (llabs(x) == llabs(y) && x > y); }); for (int i = 0; i < n; i++) cout << a[i] << (i + 1 < n ? ' ' : '\\n');\n"
        ),
        java_main(
            READ_ARRAY_JAVA
            + '        Long[] b = new Long[n]; for (int i = 0; i < n; i++) b[i] = a[i]; Arrays.sort(b, (x, y) -> Math.abs(x) != Math.abs(y) ? Long.compare(Math.abs(x), Math.abs(y)) : Long.compare(y, x)); StringBuilder o = new StringBuilder(); for (int i = 0; i < n; i++) o.append(b[i]).append(i + 1 < n ? " " : ""); System.out.println(o);\n'
        ),
        {
            "cpp": ("llabs(x) < llabs(y) ||", "x < y ||"),
            "java": ("Long.compare(Math.abs(x), Math.abs(y))", "Long.compare(x, y)"),
        },
        checker="def check(input, expected, output):\n    got = list(map(int, output.split()))\n    if sorted(got) != sorted(map(int, input.split()[1:])):\n        return False, 'not a permutation of the input'\n    return all(abs(a) <= abs(b) for a, b in zip(got, got[1:])), 'not sorted by absolute value'\n",
    )
)
add(
    Problem(
        "topological_order",
        lambda r: (
            ["3 2\n1 2\n1 3\n", "4 0\n", "5 4\n1 2\n2 3\n4 3\n3 5\n"]
            + [_dag_input(r, n, m) for n, m in [(10, 15), (60, 120)]]
        ),
        lambda t: _topo(ints(t)),
        cpp_main(
            "    int n, m; cin >> n >> m; vector<vector<int>> g(n + 1); vector<int> in(n + 1); for (int i = 0; i < m; i++) { int u, v; cin >> u >> v; g[u].push_back(v); in[v]++; } priority_queue<int> q; for (int i = 1; i <= n; i++) if (!in[i]) q.push(i); vector<int> order; while (!q.empty()) { int x = q.top(); q.pop(); order.push_back(x); for (int y : g[x]) if (--in[y] == 0) q.push(y); } for (int i = 0; i < n; i++) cout << order[i] << (i + 1 < n ? ' ' : '\\n');\n"
        ),
        java_main(
            '        int n = in.nextInt(), m = in.nextInt(); List<List<Integer>> g = new ArrayList<>(); for (int i = 0; i <= n; i++) g.add(new ArrayList<>()); int[] deg = new int[n + 1]; for (int i = 0; i < m; i++) { int u = in.nextInt(), v = in.nextInt(); g.get(u).add(v); deg[v]++; } PriorityQueue<Integer> q = new PriorityQueue<>(Collections.reverseOrder()); for (int i = 1; i <= n; i++) if (deg[i] == 0) q.add(i); StringBuilder o = new StringBuilder(); int k = 0; while (!q.isEmpty()) { int x = q.poll(); o.append(x).append(++k < n ? " " : ""); for (int y : g.get(x)) if (--deg[y] == 0) q.add(y); } System.out.println(o);\n'
        ),
        {
            "cpp": ("if (--in[y] == 0) q.push(y)", "q.push(y)"),
            "java": ("if (--deg[y] == 0) q.add(y)", "q.add(y)"),
        },
        checker="def check(input, expected, output):\n    v = list(map(int, input.split()))\n    n, m = v[0], v[1]\n    order = list(map(int, output.split()))\n    if sorted(order) != list(range(1, n + 1)):\n        return False, 'not a permutation of 1..n'\n    at = {x: i for i, x in enumerate(order)}\n    return all(at[v[2 + 2 * i]] < at[v[3 + 2 * i]] for i in range(m)), 'an edge goes backwards'\n",
    )
)


def _dag_input(rng: random.Random, n: int, m: int) -> str:
    ranking = list(range(1, n + 1))
    rng.shuffle(ranking)
    edges = []
    for _ in range(m):
        i, j = sorted(rng.sample(range(n), 2))
        edges.append(f"{ranking[i]} {ranking[j]}")
    return f"{n} {m}\n" + "\n".join(edges) + "\n"


def _topo(values: list[int]) -> str:
    n, m = values[0], values[1]
    graph: dict[int, list[int]] = {i: [] for i in range(1, n + 1)}
    degree = dict.fromkeys(range(1, n + 1), 0)
    for i in range(m):
        u, v = values[2 + 2 * i], values[3 + 2 * i]
        graph[u].append(v)
        degree[v] += 1
    ready = [node for node in range(1, n + 1) if degree[node] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for nxt in graph[node]:
            degree[nxt] -= 1
            if degree[nxt] == 0:
                heapq.heappush(ready, nxt)
    return " ".join(map(str, order)) + "\n"


add(
    Problem(
        "circle_area",
        lambda r: ["1\n", "0.5\n", "10\n", f"{r.uniform(0.1, 1000):.4f}\n"],
        lambda t: f"{math.pi * float(t) ** 2:.10f}\n",
        cpp_main('    double r; cin >> r; printf("%.6f\\n", acos(-1.0) * r * r);\n'),
        java_main('        double r = in.nextDouble(); System.out.printf("%.6f%n", Math.PI * r * r);\n'),
        {"cpp": ("acos(-1.0) * r * r", "3.14 * r * r"), "java": ("Math.PI * r * r", "3.14 * r * r")},
        float_tol=1e-6,
    )
)
add(
    Problem(
        "numbers_one_per_line",
        lambda r: ["1\n", "5\n", "30\n"],
        lambda t: " ".join(str(i) for i in range(1, ints(t)[0] + 1)) + "\n",
        cpp_main("    int n; cin >> n; for (int i = 1; i <= n; i++) cout << i << '\\n';\n"),
        java_main(
            "        int n = in.nextInt(); StringBuilder o = new StringBuilder(); for (int i = 1; i <= n; i++) o.append(i).append('\\n'); System.out.print(o);\n"
        ),
        ("i <= n", "i <= n + 1"),
        compare="tokens",
    )
)


# --- judge programs with testlib's convention (`judge input output answer`, exit 0/1/2/3), in C++ ----------

PAIR_CHECKER = """\
#include <cstdio>
#include <vector>
int main(int argc, char** argv) {
    if (argc < 4) return 3;
    FILE* in = fopen(argv[1], "r"); FILE* out = fopen(argv[2], "r"); FILE* ans = fopen(argv[3], "r");
    int n; long long t, expected, i, j;
    if (!in || !out || !ans || fscanf(in, "%d %lld", &n, &t) != 2 || fscanf(ans, "%lld", &expected) != 1) return 3;
    std::vector<long long> a(n + 1);
    for (int k = 1; k <= n; k++) if (fscanf(in, "%lld", &a[k]) != 1) return 3;
    if (fscanf(out, "%lld", &i) != 1) { fprintf(stderr, "expected a number\\n"); return 2; }
    if (i == -1) {
        if (expected == -1) return 0;
        fprintf(stderr, "answered -1, but a pair exists\\n"); return 1;
    }
    if (fscanf(out, "%lld", &j) != 1) { fprintf(stderr, "expected two indices\\n"); return 2; }
    if (i < 1 || j > n || i >= j || a[i] + a[j] != t) { fprintf(stderr, "%lld %lld is not a pair summing to %lld\\n", i, j, t); return 1; }
    return expected == -1 ? 3 : 0;  // a valid pair where the reference found none: the reference is wrong
}
"""


def _pair_input(rng: random.Random, n: int, possible: bool) -> str:
    values = [rng.randint(1, 20) for _ in range(n)]
    x, y = sorted(rng.sample(range(n), 2))
    target = values[x] + values[y] if possible else 1000
    return f"{n} {target}\n{' '.join(map(str, values))}\n"


def _pair(text: str) -> str:
    n, target, *values = ints(text)
    for i in range(n):
        for j in range(i + 1, n):
            if values[i] + values[j] == target:
                return f"{i + 1} {j + 1}\n"
    return "-1\n"


add(
    Problem(
        "pair_with_sum",
        lambda r: ["2 3\n1 2\n", "3 7\n1 2 3\n"] + [_pair_input(r, n, n != 9) for n in (5, 9, 12, 30, 30)],
        _pair,
        cpp_main(
            "    int n; long long t; cin >> n >> t; vector<long long> a(n + 1); for (int i = 1; i <= n; i++) cin >> a[i]; map<long long, int> seen; for (int j = 1; j <= n; j++) { auto it = seen.find(t - a[j]); if (it != seen.end()) { cout << it->second << ' ' << j << endl; return 0; } seen[a[j]] = j; } cout << -1 << endl;\n"
        ),
        java_main(
            '        int n = in.nextInt(); long t = in.nextLong(); long[] a = new long[n + 1]; for (int i = 1; i <= n; i++) a[i] = in.nextLong(); HashMap<Long, Integer> seen = new HashMap<>(); for (int j = 1; j <= n; j++) { Integer i = seen.get(t - a[j]); if (i != null) { System.out.println(i + " " + j); return; } seen.put(a[j], j); } System.out.println(-1);\n'
        ),
        {
            "cpp": ("seen[a[j]] = j;", "seen[a[j]] = j + 1;"),
            "java": ("seen.put(a[j], j);", "seen.put(a[j], j + 1);"),
        },
        checker={"language": "cpp", "source": PAIR_CHECKER},
    )
)

# Interactive: guess a number in [1, n] with at most 30 questions `? x` (answers <, > or =), then `! x`.
GUESS_INTERACTOR = """\
#include <cstdio>
int main(int argc, char** argv) {
    FILE* in = fopen(argv[1], "r");
    long long n, secret;
    if (!in || fscanf(in, "%lld %lld", &n, &secret) != 2) return 3;
    printf("%lld\\n", n); fflush(stdout);
    for (int asked = 0; asked <= 30; asked++) {
        char op[4]; long long x;
        if (scanf("%3s %lld", op, &x) != 2) { fprintf(stderr, "the solution stopped\\n"); return 1; }
        if (op[0] == '!') {
            if (x == secret) return 0;
            fprintf(stderr, "guessed %lld, the number was %lld\\n", x, secret); return 1;
        }
        puts(secret < x ? "<" : secret > x ? ">" : "="); fflush(stdout);
    }
    fprintf(stderr, "more than 30 questions\\n");
    return 1;
}
"""
add(
    Problem(
        "guess_number",
        lambda r: [
            "1 1\n",
            "1000000000 1000000000\n",
            f"1000000000 {r.randint(1, 10**9)}\n",
            f"100 {r.randint(1, 100)}\n",
        ],
        lambda t: "",
        cpp_main(
            '    long long n; cin >> n; long long lo = 1, hi = n; while (lo < hi) { long long mid = (lo + hi) / 2; cout << "? " << mid << endl; string r; cin >> r; if (r == "=") lo = hi = mid; else if (r == "<") hi = mid - 1; else lo = mid + 1; } cout << "! " << lo << endl;\n'
        ),
        java_main(
            '        long n = in.nextLong(); long lo = 1, hi = n; while (lo < hi) { long mid = (lo + hi) / 2; System.out.println("? " + mid); System.out.flush(); String r = in.next(); if (r.equals("=")) { lo = mid; hi = mid; } else if (r.equals("<")) hi = mid - 1; else lo = mid + 1; } System.out.println("! " + lo); System.out.flush();\n'
        ),
        ("lo = mid + 1", "lo = mid"),
        interactor={"language": "cpp", "source": GUESS_INTERACTOR},
    )
)
