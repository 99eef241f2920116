#!/bin/bash
# The whole server API test (test_server_api.sh) again on the PostgreSQL store.
HOOPCTL_TEST_STORE=postgres exec bash "$(dirname "$0")/test_server_api.sh"
