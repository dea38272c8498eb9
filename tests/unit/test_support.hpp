#pragma once
// Shared helpers for unit tests: temporary folders and files.

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace sbx::test {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "sbx-test-XXXXXX").string();
        char* made = ::mkdtemp(tmpl.data());
        if (!made) {
            throw std::runtime_error("mkdtemp failed");
        }
        m_path = made;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return m_path; }

    std::filesystem::path write(const std::string& rel, const std::string& content) const {
        auto p = m_path / rel;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << content;
        return p;
    }

private:
    std::filesystem::path m_path;
};

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace sbx::test
