#include "ctape.h"
