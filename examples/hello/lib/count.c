#include "greet.h"

int greet_count(void)
{
    return 3;
}
