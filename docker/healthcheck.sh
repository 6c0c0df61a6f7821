#!/bin/bash
# HEALTHCHECK of the images: GET /health on the served port must answer 200. Bash's /dev/tcp speaks the request, so
# the runtime images need neither curl nor wget.
port="${TESSERA_PORT:-8000}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 version status _ <&3 || exit 1
# A status line without a reason phrase ends right after the code, with its CR.
[[ "$version" == HTTP/1.* && "${status%$'\r'}" == 200 ]]
