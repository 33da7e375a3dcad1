#!/usr/bin/env bash
# Encodes the demo video that ringcast serves from demo/: a 10 s test pattern with a tone,
#   demo/media/demo.mp4    H.264 (Main) + AAC-LC, faststart (moov before mdat)
#   demo/media/demo.webm   VP9 + Opus, the fallback for browsers without H.264
#   demo/hls/master.m3u8   HLS VOD ladder: 360p and 240p variants, 2 s MPEG-TS segments; each
#                          playlist also as .m3u8.gz, for ringcast's precompressed variants
#   demo/poster.jpg        the first frame, shown before playback starts
#
# Output is deterministic for a given ffmpeg build: one encoder thread, bitexact muxers, no
# metadata. Every keyframe falls on a 2 s boundary so the HLS segments are exactly 2 s long.
# Usage: scripts/make-demo-media.sh   (needs ffmpeg with libx264, libvpx-vp9, libopus)
set -euo pipefail

cd "$(dirname "$0")/.."
demo=demo
duration=10
fps=25
gop=$((fps * 2))

command -v ffmpeg >/dev/null || { echo "make-demo-media: ffmpeg not found (apt-get install ffmpeg)" >&2; exit 1; }

# testsrc2 shows a moving pattern and a frame counter, so a playing video is easy to tell
# from a frozen one; the sine beeps once a second.
video_src="testsrc2=size=640x360:rate=${fps}:duration=${duration}"
audio_src="sine=frequency=440:beep_factor=2:sample_rate=48000:duration=${duration}"

ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }
common_in=(-f lavfi -i "$video_src" -f lavfi -i "$audio_src")
bitexact=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -threads 1)
x264=(-c:v libx264 -preset medium -profile:v main -pix_fmt yuv420p
      -g "$gop" -keyint_min "$gop" -sc_threshold 0 -x264-params "threads=1:lookahead-threads=1")
aac=(-c:a aac -ac 2 -ar 48000)

rm -rf "${demo:?}/media" "${demo:?}/hls"
mkdir -p "$demo/media" "$demo/hls"

# MP4 (progressive download; the player seeks with byte ranges).
ff "${common_in[@]}" "${bitexact[@]}" "${x264[@]}" -level:v 3.0 \
   -b:v 450k -maxrate 600k -bufsize 900k "${aac[@]}" -b:a 64k \
   -movflags +faststart "$demo/media/demo.mp4"

# WebM: VP9 + Opus, single pass, constrained quality.
ff "${common_in[@]}" "${bitexact[@]}" -c:v libvpx-vp9 -pix_fmt yuv420p -b:v 350k \
   -crf 40 -deadline good -cpu-used 4 -row-mt 0 -tile-columns 0 -g "$gop" \
   -c:a libopus -b:a 64k -ac 2 "$demo/media/demo.webm"

# HLS: one encode, two renditions, each with its own audio so every variant plays alone.
ff "${common_in[@]}" "${bitexact[@]}" \
   -filter_complex "[0:v]split=2[a][b];[a]null[v360];[b]scale=426:240[v240]" \
   -map "[v360]" -map 1:a -map "[v240]" -map 1:a \
   "${x264[@]}" \
   -b:v:0 400k -maxrate:v:0 500k -bufsize:v:0 800k -level:v:0 3.0 \
   -b:v:1 180k -maxrate:v:1 240k -bufsize:v:1 400k -level:v:1 3.0 \
   "${aac[@]}" -b:a 64k \
   -f hls -hls_time 2 -hls_playlist_type vod -hls_flags independent_segments \
   -hls_segment_type mpegts -master_pl_name master.m3u8 \
   -var_stream_map "v:0,a:0,name:360p v:1,a:1,name:240p" \
   -hls_segment_filename "$demo/hls/%v/seg%03d.ts" "$demo/hls/%v/index.m3u8"

# ffmpeg derives BANDWIDTH from the configured rates, but RFC 8216 §4.3.4.2 wants the peak
# segment bit rate as measured, so rewrite the master playlist from the segments themselves.
variant_line() {
  local name=$1 peak=0 sum_bytes=0 sum_dur=0 dur seg bytes rate
  while IFS= read -r line; do
    case $line in
      '#EXTINF:'*) dur=${line#'#EXTINF:'}; dur=${dur%%,*} ;;
      '#'* | '') ;;
      *)
        bytes=$(stat -c %s "$demo/hls/$name/$line")
        # bits per second, rounded up, with the duration in microseconds to stay in integers
        seg=$(awk -v d="$dur" 'BEGIN { printf "%d", d * 1000000 }')
        rate=$(( (bytes * 8 * 1000000 + seg - 1) / seg ))
        [ "$rate" -gt "$peak" ] && peak=$rate
        sum_bytes=$((sum_bytes + bytes)); sum_dur=$((sum_dur + seg)) ;;
    esac
  done <"$demo/hls/$name/index.m3u8"
  local avg=$(( (sum_bytes * 8 * 1000000 + sum_dur - 1) / sum_dur ))
  local codecs res
  codecs=$(grep -A1 -F "#EXT-X-STREAM-INF" "$demo/hls/master.m3u8" | grep -B1 -Fx "$name/index.m3u8" \
    | sed -n 's/.*CODECS="\([^"]*\)".*/\1/p')
  res=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 \
    "$demo/hls/$name/seg000.ts" | sed -n 1p)
  printf '#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,RESOLUTION=%s,CODECS="%s"\n%s\n' \
    "$peak" "$avg" "$res" "$codecs" "$name/index.m3u8"
}
{
  printf '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n'
  variant_line 360p
  variant_line 240p
} >"$demo/hls/master.m3u8.new"
mv "$demo/hls/master.m3u8.new" "$demo/hls/master.m3u8"

# Precompressed playlists (gzip -n: no name or time stamp, so the bytes are reproducible): ringcast
# sends FILE.gz to clients that accept gzip, which the real-client checks then exercise.
find "$demo/hls" -name '*.m3u8' -exec gzip -9 -n -k -f {} +

# Poster: first frame as a small JPEG.
ff -f lavfi -i "$video_src" -frames:v 1 -q:v 6 "${bitexact[@]}" "$demo/poster.jpg"

total=$(du -cb "$demo/media" "$demo/hls" "$demo/poster.jpg" | tail -1 | cut -f1)
limit=$((3 * 1024 * 1024))
if [ "$total" -gt "$limit" ]; then
  echo "make-demo-media: output is $total bytes, over the 3 MiB budget" >&2
  exit 1
fi
echo "make-demo-media: wrote $demo/media, $demo/hls and $demo/poster.jpg ($total bytes)"
