#include "cli/commands.hpp"

int main(int argc, char** argv) { return sbx::cli::run(argc, argv); }
