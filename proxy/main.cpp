#include <cstdio>
int main() {
    std::puts("popbridge: under construction");
    return 0;
}
