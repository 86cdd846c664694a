#include <stdio.h>
#include <string.h>
#include "greet.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--count") == 0) {
        printf("%d\n", greet_count());
        return 0;
    }
    greet("makescope");
    return 0;
}
